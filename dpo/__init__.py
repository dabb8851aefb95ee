"""chatalign.dpo: Direct Preference Optimization (Rafailov et al. 2023) on the reward models' preference data.

The policy is trained straight from preference pairs, with no reward model and no sampling: the loss of eq. 7
on the log-probabilities of the chosen and rejected answers under the policy and under a frozen reference
(the starting model, whose log-probs are computed once before training and kept in the run directory).
Importing this package is cheap; torch loads when a run starts.
"""
