"""transformers' KV caches as pytrees, without registering transformers' own types.

A ``DynamicCache`` that leaves a capture is rebuilt as :class:`TracedDynamicCache`, a
subclass that torchjax registers with torch's pytree (and, through the output bridge,
with JAX's). So ``model(ids, use_cache=True)`` under ``torchjax.jit`` or ``to_jax``
returns a cache whose layers hold real tensors/arrays, while transformers' own
registration (used by ``torch.export``) is left untouched.
"""

from __future__ import annotations

import sys
from typing import Any

import torch
from torch.utils import _pytree as pytree

_traced_cls: Any = None


def _traced_cache_class():
    global _traced_cls
    if _traced_cls is None:
        from transformers.cache_utils import DynamicCache

        class TracedDynamicCache(DynamicCache):
            """A ``DynamicCache`` whose layers came out of a torchjax capture."""

        def flatten(cache):
            children, context = [], []
            for layer in cache.layers:
                children += [layer.keys, layer.values]
                attrs = tuple(sorted((k, v) for k, v in vars(layer).items() if k not in ("keys", "values")))
                context.append((type(layer), attrs))
            return children, tuple(context)

        def unflatten(children, context):
            cache = TracedDynamicCache()
            cache.layers = []
            for i, (layer_type, attrs) in enumerate(context):
                layer = layer_type.__new__(layer_type)
                vars(layer).update(dict(attrs))
                layer.keys, layer.values = children[2 * i], children[2 * i + 1]
                cache.layers.append(layer)
            return cache

        pytree.register_pytree_node(
            TracedDynamicCache,
            flatten,
            unflatten,
            serialized_type_name="torchjax.TracedDynamicCache",
        )
        _traced_cls = TracedDynamicCache
    return _traced_cls


def _is_plain_dynamic_cache(x) -> bool:
    from transformers.cache_utils import DynamicCache, DynamicLayer

    return type(x) is DynamicCache and all(type(layer) is DynamicLayer for layer in x.layers)


def convert_caches(tree):
    """Replace plain ``DynamicCache`` leaves of ``tree`` by traced, pytree-registered ones."""
    if "transformers" not in sys.modules:
        return tree

    def one(x):
        if _is_plain_dynamic_cache(x):
            cls = _traced_cache_class()
            new = cls()
            new.layers = list(x.layers)
            return new
        return x

    return pytree.tree_map(one, tree, is_leaf=lambda x: type(x) is torch.Size)  # keep a Size whole
