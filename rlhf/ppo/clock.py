"""Wall and CPU seconds per phase of a PPO iteration."""

from __future__ import annotations

import time


class PhaseClock:
    """Wall and process-CPU seconds per phase: on a shared machine CPU seconds are the steadier figure."""

    def __init__(self):
        self.wall: dict[str, float] = {}
        self.cpu: dict[str, float] = {}
        self._w, self._c = time.perf_counter(), time.process_time()

    def lap(self, phase: str | None) -> None:
        """Charge the time since the last lap to `phase` (None: to nothing)."""
        w, c = time.perf_counter(), time.process_time()
        if phase is not None:
            self.wall[phase] = self.wall.get(phase, 0.0) + w - self._w
            self.cpu[phase] = self.cpu.get(phase, 0.0) + c - self._c
        self._w, self._c = w, c

    def record(self) -> dict:
        out = {f"time_{k}_s": round(v, 3) for k, v in self.wall.items()}
        out.update({f"cpu_{k}_s": round(v, 3) for k, v in self.cpu.items()})
        return out
