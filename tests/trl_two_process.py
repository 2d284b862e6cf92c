"""Run under `torchrun --nproc_per_node 2` by test_trl_adapter: 3 GRPO steps, gloo on CPU."""

from __future__ import annotations

import argparse
import faulthandler
import json
import os
from pathlib import Path

import torch.distributed as dist
from char_tokenizer import char_tokenizer
from trl_setup import REWARDS, grpo_config, prompts_dataset, tiny_model

from spard.client import SpardClient
from spard.trainer_adapters.trl import SpardGRPOTrainer

# A run takes ~20 s; one hung once until the test's timeout with nothing to show where. Past
# this, each rank writes every thread's stack to stderr, which the test reports.
STACKS_AFTER_S = float(os.environ.get("TRL_TWO_PROCESS_STACKS_AFTER_S", "150"))


def main() -> None:
    faulthandler.dump_traceback_later(STACKS_AFTER_S, exit=False)
    parser = argparse.ArgumentParser()
    parser.add_argument("--server", required=True)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    tokenizer = char_tokenizer()
    trainer = SpardGRPOTrainer(
        model=tiny_model(tokenizer),
        reward_funcs=REWARDS,
        args=grpo_config(str(args.out), ddp_backend="gloo"),
        train_dataset=prompts_dataset(),
        processing_class=tokenizer,
        spard_client=SpardClient(args.server),
        spard_config={"warmup": 1},
    )
    trainer.train()
    rank = dist.get_rank()
    result = {"run_id": trainer.spard_run_id, "reward_weights": trainer.reward_weights.tolist()}
    (args.out / f"rank{rank}.json").write_text(json.dumps(result))
    # Tear the process group down while both ranks are alive and in step: left to the
    # interpreter's exit, gloo's destructor on rank 0 can run after rank 1 has closed its
    # sockets and abort (SIGABRT) a run that succeeded. A barrier, then end_training()
    # (accelerate's destroy_process_group) on every rank.
    trainer.accelerator.wait_for_everyone()
    trainer.accelerator.end_training()


if __name__ == "__main__":
    main()
