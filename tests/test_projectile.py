"""The projectile domain: the closed-form dynamics against a numerical ODE solution, the source's
exact moments, the physics correction (exact projection, 1/(1+γ) contraction) and the
dynamics-residual metric (closed-form expectation under i.i.d. noise)."""
import numpy as np
import pytest
from scipy.integrate import solve_ivp

from autophagy import correction
from autophagy.data.projectile import Dynamics, ProjectileSource
from autophagy.metrics import METRICS
from autophagy.metrics.domain import dynamics_residual
from autophagy.errors import ConfigError
from autophagy.rng import Streams


def source(**kw):
    return ProjectileSource(ProjectileSource.Options(**kw))


@pytest.mark.parametrize("drag", [0.0, 1e-7, 0.5, 2.0])
def test_closed_form_matches_numerical_integration(drag):
    dyn = Dynamics(steps=12, dt=0.15, gravity=9.81, drag=drag)
    theta = np.array([0.3, 1.0, 6.0, 7.0])

    def rhs(t, s):
        return [s[2], s[3], -drag * s[2], -drag * s[3] - 9.81]

    t = 0.15 * np.arange(1, 13)
    sol = solve_ivp(rhs, (0, t[-1]), theta, t_eval=t, rtol=1e-11, atol=1e-11)
    expected = np.stack([sol.y[0], sol.y[1]], axis=1).reshape(-1)
    np.testing.assert_allclose(dyn.simulate(theta), expected, atol=1e-8)


def test_fit_recovers_initial_conditions_and_real_data_is_physical():
    src = source(height=(0.0, 2.0))
    s = Streams(0, 3, -1, "data")
    theta = src.initial_conditions(50, s)
    x = src.sample(50, Streams(0, 3, -1, "data"))
    assert x.shape == (3, 50, 20) and src.info.dim == 20
    np.testing.assert_allclose(src.dynamics.fit(x), theta, atol=1e-9)
    assert src.dynamics.residual(x).max() < 1e-10


def test_source_moments_match_the_closed_form():
    """Sample mean of each coordinate within 4 standard errors of the exact mean; variances within 10%."""
    src = source(speed=(4.0, 9.0), angle=(20.0, 70.0), height=(0.0, 1.0), noise=0.05)
    x = src.sample(4000, Streams(1, 2, -1, "data")).reshape(-1, 20)
    mean, cov = src.info.truth["mean"], src.info.truth["cov"]
    se = np.sqrt(np.diag(cov) / len(x))
    assert np.all(np.abs(x.mean(0) - mean) < 4 * se)
    np.testing.assert_allclose(np.cov(x.T), cov, rtol=0.1, atol=0.02 * np.abs(cov).max())


def test_bad_ranges_are_config_errors():
    from autophagy import api
    from autophagy.config import load_config

    for data, field in [({"speed": [9, 4]}, "data.speed"), ({"angle": [0, 120]}, "data.angle"),
                        ({"steps": 1}, "data.steps"), ({"drag": -1}, "data.drag")]:
        cfg, _ = load_config({"data": {"source": "projectile", **data}})
        with pytest.raises(ConfigError) as err:
            api.build_source(cfg)
        assert str(err.value).startswith(field)


def noisy_trajectories(R=4, n=200, sigma=0.2, seed=0):
    src = source()
    x = src.sample(n, Streams(seed, R, -1, "data"))
    return src, x + sigma * Streams(seed, R, 1, "noise").normal(n, x.shape[-1])


def test_dynamics_residual_oracle():
    """For i.i.d. N(0, σ²) noise, E[residual²] = σ² (2T − 4) / (2T): the 2T − 4 directions off the valid plane."""
    sigma = 0.2
    src, x = noisy_trajectories(R=4, n=500, sigma=sigma)
    r2 = src.dynamics.residual(x) ** 2
    expected = sigma ** 2 * 16 / 20
    assert abs(r2.mean() - expected) < 4 * r2.std() / np.sqrt(r2.size)
    out = METRICS["dynamics-residual"](None, x, info=src.info)
    assert out["dynamics-residual"].shape == (4,)
    np.testing.assert_allclose(out["dynamics-residual"], src.dynamics.residual(x).mean(1))
    clean = src.sample(30, Streams(0, 2, -1, "data"))
    assert dynamics_residual(None, clean, info=src.info)["dynamics-residual"].max() < 1e-10


def test_dynamics_residual_needs_a_projectile_source():
    from autophagy.protocols import SourceInfo

    with pytest.raises(ConfigError, match="^metrics.dynamics-residual"):
        dynamics_residual(None, np.zeros((1, 3, 4)), info=SourceInfo(dim=4))
    with pytest.raises(ConfigError, match="^metrics.dynamics-residual"):
        dynamics_residual(None, np.zeros((1, 3, 4)), info=source().info, scale=2)


@pytest.mark.parametrize("gamma", [0.5, 1.0, 9.0])
def test_physics_correction_scales_the_residual_by_one_over_one_plus_gamma(gamma):
    src, x = noisy_trajectories()
    s = Streams(0, 4, 1, "correct")
    full = correction.build({"method": "physics", "strength": "full"}, src, None)(x, streams=s)
    assert src.dynamics.residual(full).max() < 1e-10  # exact projection: zero residual
    np.testing.assert_allclose(full, correction.build({"method": "physics", "gamma": np.inf}, src, None)(x, streams=s))
    part = correction.build({"method": "physics", "gamma": gamma}, src, None)(x, streams=s)
    np.testing.assert_allclose(src.dynamics.residual(part), src.dynamics.residual(x) / (1 + gamma), rtol=1e-9)
    assert correction.build({"method": "physics", "gamma": 0}, src, None)(x, streams=s) is x


def test_projection_is_the_nearest_physical_trajectory():
    """P(x) beats any other physical trajectory: perturbing the fitted initial conditions only increases the error."""
    src, x = noisy_trajectories(R=1, n=5)
    theta = src.dynamics.fit(x)
    best = ((x - src.dynamics.simulate(theta)) ** 2).sum(-1)
    for delta in np.eye(4) * 0.01:
        assert np.all(((x - src.dynamics.simulate(theta + delta)) ** 2).sum(-1) > best)
