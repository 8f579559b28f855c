// curate-dedup: JSON Lines / text / document shards in, cleaned and deduplicated document
// shards out, with report.json and an audit line for every removed document.
//
// Stages, in order, each switchable: cleanup (UTF-8 repair, NFC, whitespace), language ID
// (CLD2), quality rules (Gopher, C4, FineWeb), PII redaction, exact dedup (128-bit hash of the
// final text), fuzzy dedup (MinHash-LSH, optional exact-Jaccard verification).
//
// Two passes keep memory bounded by hashes, not texts: pass 1 streams the inputs through the
// per-document stages, writes survivors to a work shard and keeps only (key, hash, band keys,
// id) per document; dedup runs on those across ranks; pass 2 streams the work shard into the
// output shards, skipping the duplicates.
#pragma once

#include "cli/app.hpp"

namespace bellows::curate {

cli::ToolSpec tool_spec();

}  // namespace bellows::curate
