"""chatalign.rlhf: iterative RLHF rounds of the Llama 2 recipe (sec. 3.2.3).

- rejection sampling fine-tuning: rs/ (selection, pooling, the phase, the Fig. 7 curves);
- PPO: ppo/, components composed by ppo.trainer.PPOTrainer: frozen (reference, reward models), backends
  (policy and value on chatalign.training.backend), sampler, experience (the typed Experience), kl_control,
  update, evaluation (held-out reward, early stopping), checkpoint, guards, loop; the arithmetic in ppo.math
  and the reward combination in reward_mix (pure functions);
- rounds: config, round (phases, lineage, resume), lineage, evaluate/ (win rates, KL), report, status;
- the CLI entry points: cli_commands (cmd_round, cmd_rs, cmd_ppo, cmd_status).
Importing this package is cheap: torch loads inside the functions that need it.
"""
