"""The KL penalty coefficient beta of PPO's per-token reward R~c - beta * KL (Llama 2 sec. 3.2.3: a fixed beta,
0.01 for 7B/13B). A controller is asked for `beta` when an iteration's rewards are made and told the iteration's
measured KL afterwards, so an adaptive one (Ziegler et al. 2019: beta moved towards a target KL) fits the same
place; its `state()` is saved in every PPO checkpoint, so a resumed run continues with the same beta."""

from __future__ import annotations

from typing import Protocol


class KLController(Protocol):
    beta: float

    def update(self, kl: float, n_answers: int) -> None:
        """After an iteration: its mean KL per answer to the reference, over `n_answers` answers."""

    def state(self) -> dict: ...

    def load_state(self, state: dict) -> None: ...


class FixedKL:
    """beta as configured, for the whole run."""

    def __init__(self, beta: float):
        self.beta = beta

    def update(self, kl: float, n_answers: int) -> None:
        pass

    def state(self) -> dict:
        return {}

    def load_state(self, state: dict) -> None:
        pass
