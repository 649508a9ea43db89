"""The workloads W1-W8 of WORKLOADS.md; each module's ``cases(quick)`` builds its cases."""

from . import (
    w1_per_sample_grads,
    w2_ensembling,
    w3_jacobians,
    w4_hessians,
    w5_gpt2,
    w6_tiny_call,
    w7_crossing,
    w8_training,
)

ALL = (
    w1_per_sample_grads,
    w2_ensembling,
    w3_jacobians,
    w4_hessians,
    w5_gpt2,
    w6_tiny_call,
    w7_crossing,
    w8_training,
)
