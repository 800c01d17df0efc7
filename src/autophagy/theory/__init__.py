"""Closed-form theory of self-consuming loops: expected ``param.*`` trajectories and stability conditions.

Public API::

    from autophagy import theory
    theory.predict(config)            # DataFrame: generation, metric, expected, run_id
    theory.predict_many(configs)      # [predict(c) or the error it raises], recursions batched across configs
    theory.compare(config, metrics)   # + measured, se, z, flag (|z| > 4)
    theory.contraction(config)        # Gaussian reference-mix: exact factor κ beside Gillman's bound
    theory.NoClosedForm               # raised (with the reason) when a configuration has no closed form

Submodules hold the formulas, each documented with its source (paper and equation, or "derived here"):
``gaussian`` (replace loop: trace, E σ, log det, W₂²; fresh and augment recursions and fixed points),
``moments`` (exact mean/trace propagation for every policy), ``kde`` (the KDE replace loop), ``effective`` (MAD's effective sample size and
admissible n_s), ``categorical`` (Wright–Fisher), ``regression`` (Gerstgrasser et al.), ``stability``
(Bertrand et al.'s Theorem 1, Gillman et al.'s Theorem 4.3, the Gaussian reference-mix factor).
See docs/theory.md.
"""
from .categorical import (absorption_time, fixation_probability, gini_simpson_decay, kimura_absorption_time,
                          loop_absorption_time, replace_metrics as categorical_replace_metrics, transition_matrix)
from .effective import (admissible_synthetic, effective_sample_size, fisher_distance, fresh_fourth_moments,
                        fresh_limit_moments, real_only_distance)
from .gaussian import (augment_conditional_fixed_point, augment_fixed_point, augment_recursion, bertrand_alpha,
                       fresh_fixed_point, fresh_recursion, fresh_trajectory, replace_logdet, replace_mean_sq_error,
                       replace_std, replace_trace, replace_w2_sq, w2_lower_bound)
from .kde import kde_replace_mean_sq_error, kde_replace_pool_trace, kde_replace_trace
from .moments import MomentSpec, propagate, propagate_many
from .predict import NoClosedForm, compare, contraction, predict, predict_many
from .regression import accumulate_bound, design_trace_inverse, expected_test_error, replace_test_error_estimated_noise
from .stability import (bertrand_max_ratio, bertrand_rate, bertrand_stable, finite_sample_mean_slope, gillman_max_ratio,
                        gillman_rate, gillman_stable, reference_mix_factor)

__all__ = [
    "predict", "predict_many", "compare", "contraction", "NoClosedForm", "MomentSpec", "propagate", "propagate_many",
    "replace_trace", "replace_mean_sq_error", "replace_std", "replace_logdet", "replace_w2_sq", "w2_lower_bound",
    "kde_replace_trace", "kde_replace_pool_trace", "kde_replace_mean_sq_error",
    "bertrand_alpha", "fresh_recursion", "fresh_fixed_point", "fresh_trajectory", "augment_recursion",
    "augment_fixed_point", "augment_conditional_fixed_point",
    "effective_sample_size", "admissible_synthetic", "fresh_fourth_moments", "fresh_limit_moments",
    "fisher_distance", "real_only_distance",
    "categorical_replace_metrics", "gini_simpson_decay", "transition_matrix", "fixation_probability",
    "absorption_time", "kimura_absorption_time", "loop_absorption_time",
    "expected_test_error", "replace_test_error_estimated_noise", "design_trace_inverse", "accumulate_bound",
    "bertrand_rate", "bertrand_stable", "bertrand_max_ratio", "gillman_rate", "gillman_stable", "gillman_max_ratio",
    "reference_mix_factor", "finite_sample_mean_slope",
]
