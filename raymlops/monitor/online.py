"""The online detectors' lifecycle, per version. No Ray here.

A version's online detector is calibrated once (slow: seconds to a minute) and kept with the
version, so a restarted monitor loads it instead of calibrating again; a snapshot may also
hand back the detector's running state. Each version moves through
``not started → loading → calibrating → ready`` or ends ``failed: <why>``; without an online
detector the other tests of that version still run.
"""

from __future__ import annotations

import time
from typing import Any, Callable

NOT_STARTED = "not started"


class OnlineDetectors:
    """Where each version's online detector is, and the work of getting one.

    Args:
        load: ``load(version)`` → a saved calibrated detector, or None.
        build: ``build(source)`` → a freshly calibrated detector from what :meth:`obtain` was given
            (the version's reference or its checker; slow).
        save: ``save(version, detector)`` keeps a fresh one with the version.
    """

    def __init__(self, load: Callable[[int], Any], build: Callable[[Any], Any],
                 save: Callable[[int, Any], None]) -> None:
        self.load, self.build, self.save = load, build, save
        self.states: dict[int, str] = {}
        self.restored: dict[int, Any] = {}
        self.refused: dict[int, str] = {}  # saved detectors refused (tampered with), by version
        self.calibration_s: float | None = None

    def restore(self, saved: dict[int, Any]) -> None:
        """Detectors (with their running state) a snapshot kept, by version."""
        self.restored = {int(v): detector for v, detector in saved.items()}

    def take_restored(self, version: int) -> Any:
        """The snapshot's detector of ``version`` (ready at once), or None: then call :meth:`obtain`."""
        detector = self.restored.pop(version, None)
        if detector is not None:
            self.states[version] = "ready"
        return detector

    def obtain(self, version: int, source: Any) -> Any:
        """Load the version's calibrated detector, or calibrate and save one (blocking). Returns
        None, with the state ``failed: …``, when neither works."""
        self.states[version] = "loading"
        try:
            detector = self._load_trusted(version)
            if detector is None:
                self.states[version] = "calibrating"
                started = time.perf_counter()
                detector = self.build(source)
                self.calibration_s = round(time.perf_counter() - started, 2)
                self.save(version, detector)
        except Exception as exc:  # noqa: BLE001 - without an online detector the other tests still run
            self.states[version] = f"failed: {type(exc).__name__}: {exc}"
            return None
        self.states[version] = "ready"
        return detector

    def _load_trusted(self, version: int) -> Any:
        """The saved detector, or None when there is none or it was refused (then it is calibrated
        again; the refusal is kept in ``refused``)."""
        from raymlops.errors import ArtifactIntegrityError

        try:
            return self.load(version)
        except ArtifactIntegrityError as exc:
            self.refused[version] = str(exc)
            return None

    def calibration(self) -> dict[str, float]:
        """The last calibration's duration, for the monitor's counters (empty before one)."""
        return {"calibration_s": self.calibration_s} if self.calibration_s is not None else {}

    def state_of(self, version: int) -> str:
        """The version's lifecycle state (and why a saved detector was refused, if one was)."""
        state = self.states.get(version, NOT_STARTED)
        if version in self.refused:
            return f"{state} (the saved detector was refused and calibrated again: {self.refused[version]})"
        return state
