#include <gtest/gtest.h>

#include "dist/comm.hpp"
#include "dist/context.hpp"

using namespace bellows::dist;

TEST(Launch, PlainProcessIsSingle) {
  LaunchInfo li = detect_launch({{"HOME", "/root"}});
  EXPECT_EQ(li.launcher, Launcher::single);
  EXPECT_EQ(li.env_rank, 0);
  EXPECT_EQ(li.env_size, 1);
  EXPECT_TRUE(li.problem.empty());
}

TEST(Launch, MpirunInsideAnAllocationIsMpirun) {
  // mpirun inside sbatch inherits the batch step's SLURM_* variables: mpirun's own win.
  LaunchInfo li = detect_launch({{"OMPI_COMM_WORLD_RANK", "3"}, {"OMPI_COMM_WORLD_SIZE", "8"},
                                 {"SLURM_JOB_ID", "42"}, {"SLURM_PROCID", "0"}, {"SLURM_RESTART_COUNT", "2"},
                                 {"SLURM_JOB_NODELIST", "n[1-2]"}});
  EXPECT_EQ(li.launcher, Launcher::mpirun);
  EXPECT_EQ(li.env_rank, 3);
  EXPECT_EQ(li.env_size, 8);
  EXPECT_EQ(li.slurm_job_id, "42");
  EXPECT_EQ(li.restart_count, 2);
  EXPECT_EQ(li.slurm_nodelist, "n[1-2]");
}

TEST(Launch, SrunWithPmixIsSrun) {
  LaunchInfo li = detect_launch({{"SLURM_JOB_ID", "7"}, {"SLURM_STEP_ID", "0"}, {"SLURM_PROCID", "2"},
                                 {"SLURM_STEP_NUM_TASKS", "4"}, {"PMIX_RANK", "2"}});
  EXPECT_EQ(li.launcher, Launcher::srun);
  EXPECT_EQ(li.env_rank, 2);
  EXPECT_EQ(li.env_size, 4);
  EXPECT_TRUE(li.problem.empty());
}

TEST(Launch, SrunWithoutPmiAndSeveralTasksIsRefusedWithTheFix) {
  LaunchInfo li = detect_launch({{"SLURM_JOB_ID", "7"}, {"SLURM_STEP_ID", "0"}, {"SLURM_PROCID", "1"},
                                 {"SLURM_STEP_NUM_TASKS", "4"}});
  EXPECT_NE(li.problem.find("--mpi=pmix"), std::string::npos) << li.problem;
}

TEST(Launch, BatchScriptItselfIsSingle) {
  LaunchInfo li = detect_launch({{"SLURM_JOB_ID", "7"}, {"SLURM_PROCID", "0"}, {"SLURM_NTASKS", "4"}});
  EXPECT_EQ(li.launcher, Launcher::single);
  EXPECT_EQ(li.slurm_job_id, "7");
}

TEST(Placement, LineHasEveryField) {
  Placement p{2, 4, 0, 2, 1, 2, "node7"};
  LaunchInfo li;
  li.launcher = Launcher::srun;
  li.slurm_job_id = "99";
  EXPECT_EQ(p.to_line(li),
            "rank=2 size=4 local_rank=0 local_size=2 node=node7 node_index=1 num_nodes=2 launcher=srun slurm_job=99 restart=0");
}

TEST(SelfCommunicator, CollectivesAreIdentity) {
  SelfCommunicator c;
  EXPECT_EQ(c.allreduce_value(int64_t{5}, ReduceOp::sum), 5);
  EXPECT_EQ(c.broadcast_string("x", 0), "x");
  EXPECT_EQ(c.gather("a", 0), std::vector<std::string>{"a"});
}
