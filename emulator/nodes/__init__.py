"""The emulator's NODE_CLASS_MAPPINGS: every class_type it knows, real or simulated."""

from __future__ import annotations

from comfygraph.emulator.nodes import (
    ad_compose,
    custom_image,
    custom_video,
    image_core,
    io_core,
    multitalk,
    sd,
    text_core,
    wan,
)
from comfygraph.emulator.nodes.base import NodeContext, NodeDef

__all__ = ["NodeContext", "NodeDef", "node_registry"]


def node_registry() -> dict[str, NodeDef]:
    """A fresh mapping class_type -> NodeDef (built on demand, never at import time)."""
    groups = (
        image_core.NODES,
        io_core.NODES,
        text_core.NODES,
        sd.NODES,
        wan.NODES,
        multitalk.NODES,
        custom_image.NODES,
        custom_video.NODES,
        ad_compose.NODES,
    )
    registry: dict[str, NodeDef] = {}
    for group in groups:
        for node in group:
            if node.class_type in registry:
                raise ValueError(f"node {node.class_type} defined twice")
            registry[node.class_type] = node
    return registry
