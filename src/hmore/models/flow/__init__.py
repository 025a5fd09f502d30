"""H-MoRe world/local flow models. Importing this package registers ``hmore_flow``, ``hmore_flow_cpu`` and
``hmore_flow_test`` (see ``hmore.registry``)."""

from hmore.models.flow.config import FlowConfig
from hmore.models.flow.model import FlowOutput, HMoReFlow, build_hmore_flow_model, local_from_world

__all__ = ["FlowConfig", "FlowOutput", "HMoReFlow", "build_hmore_flow_model", "local_from_world"]
