#!/usr/bin/env bash
# The authors' ms-swift command (scripts/spard.sh of USTC-StarTeam/SPARD), with SPARD turned on
# by one plugin file instead of their fork's --dynaopt_* flags:
#   --dynaopt_enabled / --dynaopt_weight_enabled / --dynaopt_data_enabled -> the spard strategy
#   --dynaopt_every_steps 4                        -> SPARD_CONFIG='{"update_every": 4}'
# Needs: pip install '.[swift]' from a clone of spard (ms-swift 4.6) and a SPARD service (spard serve), or no
# SPARD_URL for the in-process engine (one node only: each node would keep its own curriculum).
set -euo pipefail

export SPARD_URL="${SPARD_URL:-http://127.0.0.1:8000}"
export SPARD_RUN_ID="${SPARD_RUN_ID:-swift-spard}"   # reused on restart: the same curriculum
export SPARD_STRATEGY="${SPARD_STRATEGY:-spard}"
export SPARD_CONFIG='{"update_every": 4}'
SPARD_PLUGIN="$(python -m spard.trainer_adapters.swift)"

export NPROC_PER_NODE=8
export NNODES="${WORLD_SIZE:-1}"
export NODE_RANK="${RANK:-0}"

swift rlhf \
    --rlhf_type grpo \
    --model "${MODEL:?set MODEL}" \
    --external_plugins "$SPARD_PLUGIN" ${REWARD_PLUGIN:+"$REWARD_PLUGIN"} \
    --reward_funcs ${REWARD_FUNCS:?set REWARD_FUNCS, e.g. accuracy format} \
    ${REWARD_WEIGHTS:+--reward_weights $REWARD_WEIGHTS} \
    --reward_thread_num 4 \
    --train_type full \
    --use_vllm true \
    --vllm_mode colocate \
    --vllm_gpu_memory_utilization 0.4 \
    --vllm_max_model_len 12000 \
    --vllm_tensor_parallel_size 4 \
    --torch_dtype bfloat16 \
    --dataset "${DATASET:?set DATASET}" \
    --max_completion_length 8192 \
    --num_train_epochs 1 \
    --per_device_train_batch_size 8 \
    --per_device_eval_batch_size 1 \
    --learning_rate 1e-6 \
    --gradient_accumulation_steps 1 \
    --eval_steps 200 \
    --save_steps 30 \
    --save_total_limit 20 \
    --logging_steps 1 \
    --max_length 12000 \
    --output_dir "${OUTPUT_DIR:?set OUTPUT_DIR}" \
    --warmup_ratio 0.05 \
    --dataloader_num_workers 4 \
    --dataset_num_proc 4 \
    --num_generations 8 \
    --temperature 0.7 \
    --deepspeed zero3 \
    --sequence_parallel_size 4 \
    --overlong_filter true \
    --report_to tensorboard \
    --log_completions true \
    --dynamic_sample true \
    --log_entropy true \
    --dataset_shuffle false
