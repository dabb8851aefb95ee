"""chatalign.rlhf: iterative RLHF rounds of the Llama 2 recipe (sec. 3.2.3).

- rejection sampling fine-tuning: rejection_sampling (selection, pooling), rs_phase, rs_curves (Fig. 7);
- PPO: ppo (the loop), ppo_update (minibatch steps), ppo_forward, ppo_batch, ppo_models, ppo_checkpoint,
  with the arithmetic in ppo_math and the reward combination in reward_mix (pure functions);
- rounds: config, round (phases, lineage, resume), lineage, evaluate (win rates), report, status;
- the CLI entry points: cli_commands (cmd_round, cmd_rs, cmd_ppo, cmd_status).
Importing this package is cheap: torch loads inside the functions that need it.
"""
