# Sourced from a GPU bundle's directory (see make-bundle.sh): our libraries first, then the
# machine's CUDA libraries (toolkit lib64, or the nvidia-* wheels PyTorch brings), so that the
# tools dlopen the cuBLAS and NCCL of the machine's CUDA.
BUNDLE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
cuda_dirs=()
for d in "${CUDA_HOME:-}/lib64" /usr/local/cuda/lib64; do [[ -d $d ]] && cuda_dirs+=("$d"); done
if command -v python3 >/dev/null 2>&1; then
    while IFS= read -r d; do [[ -d $d ]] && cuda_dirs+=("$d"); done < <(python3 - <<'PY' 2>/dev/null
import glob, os
try:
    import nvidia
    for base in nvidia.__path__:
        for d in sorted(glob.glob(os.path.join(base, "*", "lib"))):
            print(d)
except ImportError:
    pass
PY
)
fi
export LD_LIBRARY_PATH=$BUNDLE/lib$(printf ':%s' "${cuda_dirs[@]}")${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
export PATH=$BUNDLE/bin:$PATH
