"""dagnet: neural networks on arbitrary DAGs, rescaling symmetry, path norms, Path-SGD."""

from dagnet.builders import balanced_init, layered, random_dag
from dagnet.compiled import CompiledDagNet
from dagnet.layering import depth, layers_in, layers_out
from dagnet.network import ACTIVATIONS, HOMOGENEOUS, DagNet, NetworkError
from dagnet.optim import PathSGD, path_sgd_step_
from dagnet.pathnorm import path_norm, path_scaling
from dagnet.rescaling import random_rescale, rescale, rescale_module_, unbalanced

# theory
from dagnet.equivalence import (InvariantBasis, canonical, equivalent, invariants,
                                rescaling_matrix)
from dagnet.norms import (RescalingOptimum, balance, group_norm, min_per_unit_norm,
                          per_unit_norm)
from dagnet.enumeration import count_paths, path_vector, paths

__all__ = [
    # networks
    "DagNet",
    "NetworkError",
    "ACTIVATIONS",
    "HOMOGENEOUS",
    "layered",
    "random_dag",
    "balanced_init",
    "CompiledDagNet",
    # layering
    "layers_in",
    "layers_out",
    "depth",
    # path norms
    "path_norm",
    "path_scaling",
    # rescaling
    "rescale",
    "rescale_module_",
    "random_rescale",
    "unbalanced",
    # optimisation
    "PathSGD",
    "path_sgd_step_",
    # theory
    "count_paths",
    "paths",
    "path_vector",
    "group_norm",
    "per_unit_norm",
    "min_per_unit_norm",
    "balance",
    "RescalingOptimum",
    "equivalent",
    "canonical",
    "invariants",
    "InvariantBasis",
    "rescaling_matrix",
]
