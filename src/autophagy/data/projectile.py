"""A physics domain: short 2-D projectile trajectories under gravity and linear drag.

Why: Gillman et al. (2024, "Self-Correcting Self-Consuming Loops") stabilise a self-consuming
loop by passing generated human motions through a physics simulator. This is the smallest domain
with the same structure: every real sample obeys known dynamics, a generative model does not,
and a closed-form projection onto the physically valid set plays the simulator's part.

Dynamics: dv/dt = −k v − g ŷ from launch position (x0, y0) with velocity (vx, vy). The exact
solution at t is
    x(t) = x0 + a(t) vx,        y(t) = y0 + a(t) vy − b(t),
    a(t) = (1 − e^{−kt}) / k,    b(t) = (g / k) (t − a(t))     (a = t, b = g t²/2 when k = 0),
so a trajectory observed at t_i = i·dt, i = 1..T, is **affine** in θ = (x0, y0, vx, vy):
x = A θ + c with A (2T, 4), c (2T,). The data vector is (x_1, y_1, ..., x_T, y_T), d = 2T.

The source launches from x0 = 0 at a height y0 ~ U(``height``), speed ~ U(``speed``) and angle
~ U(``angle``) (degrees above the horizontal), plus optional i.i.d. N(0, ``noise``²) observation
noise. The physically valid set is the 4-dimensional affine subspace {A θ + c}; ``Dynamics``
projects onto it by least squares (``project``) and measures the distance to it
(``residual``: the RMS over the 2T coordinates of x − P(x), zero exactly for noise-free
physical trajectories). ``info.truth`` holds the dynamics (``dynamics: "projectile"``, ``steps``,
``dt``, ``gravity``, ``drag``) and the exact mean and covariance of the data vector.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

import numpy as np
from pydantic import Field, PositiveFloat, model_validator

from ..errors import ConfigError
from ..options import Options
from ..protocols import SourceInfo
from ..rng import Streams


def coefficients(steps: int, dt: float, gravity: float, drag: float) -> tuple[np.ndarray, np.ndarray]:
    """``a(t_i)`` and ``b(t_i)`` for t_i = i·dt, i = 1..steps: two ``(steps,)`` arrays (series for small k·t)."""
    t = dt * np.arange(1, steps + 1)
    kt = drag * t
    if drag == 0.0 or kt[-1] < 1e-4:  # t − a(t) cancels badly: use the Taylor series to O((kt)^3)
        a = t * (1 - kt / 2 + kt ** 2 / 6 - kt ** 3 / 24)
        b = gravity * t ** 2 * (0.5 - kt / 6 + kt ** 2 / 24 - kt ** 3 / 120)
    else:
        a = -np.expm1(-kt) / drag
        b = gravity * (t - a) / drag
    return a, b


class Dynamics:
    """The affine trajectory map x = A θ + c and the least-squares projection onto its image.

    ``A (2T, 4)``, ``c (2T,)``; ``H = A A⁺`` is the orthogonal projector onto span(A), so
    P(x) = c + H (x − c) is the nearest physical trajectory to x (closed form, no iteration).
    """

    def __init__(self, steps: int, dt: float, gravity: float, drag: float):
        self.steps, self.dt, self.gravity, self.drag = int(steps), float(dt), float(gravity), float(drag)
        a, b = coefficients(self.steps, self.dt, self.gravity, self.drag)
        A = np.zeros((2 * self.steps, 4))
        A[0::2, 0], A[0::2, 2] = 1.0, a
        A[1::2, 1], A[1::2, 3] = 1.0, a
        c = np.zeros(2 * self.steps)
        c[1::2] = -b
        self.A, self.c = A, c
        self.pinv = np.linalg.pinv(A)  # (4, 2T)
        self.H = A @ self.pinv  # (2T, 2T), symmetric

    @classmethod
    def from_info(cls, info: SourceInfo | Mapping[str, Any], field: str) -> "Dynamics":
        """The dynamics of a projectile source's ``info`` (or its ``truth``); ConfigError on ``field`` otherwise."""
        truth = getattr(info, "truth", info) or {}
        if truth.get("dynamics") != "projectile":
            raise ConfigError(field, truth.get("dynamics", "none"), "a projectile source (data.source: projectile)",
                              problem="needs the projectile source's dynamics (data.source: projectile)")
        return cls(truth["steps"], truth["dt"], truth["gravity"], truth["drag"])

    def simulate(self, theta: np.ndarray) -> np.ndarray:
        """Trajectories ``(..., 2T)`` from initial conditions ``theta (..., 4)`` = (x0, y0, vx, vy)."""
        return np.asarray(theta, dtype=float) @ self.A.T + self.c

    def fit(self, x: np.ndarray) -> np.ndarray:
        """Least-squares initial conditions ``(..., 4)`` of trajectories ``x (..., 2T)``."""
        return (np.asarray(x, dtype=float) - self.c) @ self.pinv.T

    def project(self, x: np.ndarray) -> np.ndarray:
        """The nearest physical trajectory: ``simulate(fit(x))``, shape kept ``(..., 2T)``."""
        return self.c + (np.asarray(x, dtype=float) - self.c) @ self.H

    def residual(self, x: np.ndarray) -> np.ndarray:
        """RMS over coordinates of x − P(x): ``(..., 2T) -> (...)`` (0 on physical trajectories)."""
        x = np.asarray(x, dtype=float)
        return np.sqrt(((x - self.project(x)) ** 2).mean(-1))


def _uniform_trig(lo: float, hi: float) -> tuple[float, float, float, float]:
    """E[cos φ], E[sin φ], E[cos² φ], E[sin φ cos φ] for φ ~ U(lo, hi) (radians; a point if lo = hi)."""
    w = hi - lo
    if w < 1e-12:
        return np.cos(lo), np.sin(lo), np.cos(lo) ** 2, np.sin(lo) * np.cos(lo)
    return ((np.sin(hi) - np.sin(lo)) / w, (np.cos(lo) - np.cos(hi)) / w,
            0.5 + (np.sin(2 * hi) - np.sin(2 * lo)) / (4 * w), (np.cos(2 * lo) - np.cos(2 * hi)) / (4 * w))


class ProjectileSource:
    """2-D projectile trajectories (see the module docstring); ``d = 2 · steps``."""

    class Options(Options):
        steps: int = Field(10, ge=2, description="T: positions per trajectory (d = 2T)")
        dt: PositiveFloat = Field(0.1, description="time between positions (s)")
        gravity: float = Field(9.81, ge=0.0, description="g (m/s²)")
        drag: float = Field(0.5, ge=0.0, description="linear drag coefficient k (1/s): dv/dt = −k v − g ŷ")
        speed: tuple[float, float] = Field((5.0, 10.0), description="launch speed range (m/s), uniform")
        angle: tuple[float, float] = Field((30.0, 60.0), description="launch angle range (degrees), uniform")
        height: tuple[float, float] = Field((0.0, 0.0), description="launch height range (m), uniform")
        noise: float = Field(0.0, ge=0.0, description="std of i.i.d. Gaussian observation noise per coordinate")

        @model_validator(mode="after")
        def _ranges(self):
            for name in ("speed", "angle", "height"):
                lo, hi = getattr(self, name)
                if lo > hi:
                    raise ConfigError(f"data.{name}", [lo, hi], "a range [low, high] with low <= high")
            if self.speed[0] < 0:
                raise ConfigError("data.speed", list(self.speed), "a range of non-negative speeds")
            if not -90.0 <= self.angle[0] <= self.angle[1] <= 90.0:
                raise ConfigError("data.angle", list(self.angle), "a range of angles within [-90, 90] degrees")
            return self

    def __init__(self, options: "ProjectileSource.Options" = None, base_dir: Path = Path(".")):
        o = self.options = options or self.Options()
        self.dynamics = Dynamics(o.steps, o.dt, o.gravity, o.drag)
        mean, cov = self._moments()
        self.info = SourceInfo(dim=2 * o.steps, kind="vector", truth={
            "dynamics": "projectile", "steps": o.steps, "dt": o.dt, "gravity": o.gravity, "drag": o.drag,
            "noise": o.noise, "mean": mean, "cov": cov, "gaussian": False})

    def _moments(self) -> tuple[np.ndarray, np.ndarray]:
        """Exact mean ``(2T,)`` and covariance ``(2T, 2T)``: θ's moments pushed through x = Aθ + c."""
        o = self.options
        s_lo, s_hi = o.speed
        es, es2 = (s_lo + s_hi) / 2, (s_lo ** 2 + s_lo * s_hi + s_hi ** 2) / 3
        ec, esn, ec2, esc = _uniform_trig(*np.deg2rad(o.angle))
        h_lo, h_hi = o.height
        m = np.array([0.0, (h_lo + h_hi) / 2, es * ec, es * esn])
        second = np.zeros((4, 4))
        second[1, 1] = (h_hi - h_lo) ** 2 / 12
        second[2, 2] = es2 * ec2 - m[2] ** 2
        second[3, 3] = es2 * (1 - ec2) - m[3] ** 2
        second[2, 3] = second[3, 2] = es2 * esc - m[2] * m[3]
        A = self.dynamics.A
        return A @ m + self.dynamics.c, A @ second @ A.T + o.noise ** 2 * np.eye(2 * o.steps)

    def initial_conditions(self, n: int, streams: Streams) -> np.ndarray:
        """``(R, n, 4)`` launch states θ = (x0, y0, vx, vy)."""
        o = self.options
        speed = o.speed[0] + (o.speed[1] - o.speed[0]) * streams.child("speed").uniform(n)
        angle = np.deg2rad(o.angle[0] + (o.angle[1] - o.angle[0]) * streams.child("angle").uniform(n))
        height = o.height[0] + (o.height[1] - o.height[0]) * streams.child("height").uniform(n)
        return np.stack([np.zeros_like(speed), height, speed * np.cos(angle), speed * np.sin(angle)], axis=-1)

    def sample(self, n: int, streams: Streams) -> np.ndarray:
        """``(R, n, 2T)`` flattened trajectories (x_1, y_1, ..., x_T, y_T)."""
        x = self.dynamics.simulate(self.initial_conditions(n, streams))
        if self.options.noise > 0:
            x = x + self.options.noise * streams.child("noise").normal(n, x.shape[-1])
        return x
