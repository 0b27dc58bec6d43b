"""Hardware profiling: FLOPs (MACs, fvcore), measured latency, device profiles, latency
predictors for unreachable devices, Ray routing to device nodes, ONNX export.

See docs/profiling.md.
"""

from search.profile.api import (  # noqa: F401
    PredictedLatencyWarning,
    cluster_offers,
    latency_plan,
    measurable_here,
    profile_model,
    profile_on_device,
)
from search.profile.devices import DeviceProfile, get_device, list_devices  # noqa: F401
from search.profile.flops import count_flops, count_params, flops_breakdown, lr_shape_for  # noqa: F401
from search.profile.latency import measure_latency  # noqa: F401
from search.profile.onnx_export import check_onnx, export_onnx  # noqa: F401
from search.profile.predictor import graph_features, load_predictor, predict_latency  # noqa: F401
