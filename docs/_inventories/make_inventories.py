"""Write the small intersphinx inventories that let the docs build link out offline.

The build has no network, so it cannot fetch ``objects.inv`` from the JAX, Flax, optax,
NumPy, Python and Matplotlib sites. Instead this script writes, in Sphinx's own inventory
format (version 2, zlib-compressed), an inventory per project holding the names that jdrop's
docstrings, signatures and pages reference, each pointing at its page on the real site. The
runtime paths that annotations resolve to (``jax.jaxlib._jax.Array``,
``optax._src.base.GradientTransformation``) are listed as aliases of the public pages.

Run it after referencing a new external name (``docs/conf.py`` reads the ``*.inv`` files)::

    python docs/_inventories/make_inventories.py

A name missing here is not an error: the reference renders as plain code, unlinked.
"""

import pathlib
import zlib

HERE = pathlib.Path(__file__).resolve().parent

_JAX_AUTO = [  # documented on one autosummary page each: _autosummary/<name>.html
    ("jax.Array", "class"),
    ("jax.jit", "function"),
    ("jax.vmap", "function"),
    ("jax.grad", "function"),
    ("jax.value_and_grad", "function"),
    ("jax.vjp", "function"),
    ("jax.custom_vjp", "class"),
    ("jax.checkpoint", "function"),
    ("jax.shard_map", "function"),
    ("jax.device_put", "function"),
    ("jax.devices", "function"),
    ("jax.make_mesh", "function"),
    ("jax.random.key", "function"),
    ("jax.random.PRNGKey", "function"),
    ("jax.random.split", "function"),
    ("jax.random.fold_in", "function"),
    ("jax.random.bernoulli", "function"),
    ("jax.random.uniform", "function"),
    ("jax.random.normal", "function"),
    ("jax.random.bits", "function"),
    ("jax.lax.scan", "function"),
    ("jax.lax.select", "function"),
    ("jax.lax.stop_gradient", "function"),
    ("jax.numpy.where", "function"),
    ("jax.numpy.mean", "function"),
    ("jax.nn.softmax", "function"),
    ("jax.nn.log_softmax", "function"),
    ("jax.nn.relu", "function"),
    ("jax.nn.dot_product_attention", "function"),
]
_JAX_SHARDING = ["Mesh", "NamedSharding", "PartitionSpec", "Sharding"]
_NNX = "api_reference/flax.nnx/"
_LINEN = "api_reference/flax.linen/"

PROJECTS = {
    "jax": {
        "project": "JAX",
        "objects": [
            (name, "py:" + role, f"_autosummary/{name}.html#{name}") for name, role in _JAX_AUTO
        ]
        + [
            (f"jax.sharding.{name}", "py:class", f"jax.sharding.html#jax.sharding.{name}")
            for name in _JAX_SHARDING
        ]
        + [
            ("jax.jaxlib._jax.Array", "py:class", "_autosummary/jax.Array.html#jax.Array"),
            ("jaxlib._jax.Array", "py:class", "_autosummary/jax.Array.html#jax.Array"),
            ("jax._src.mesh.Mesh", "py:class", "jax.sharding.html#jax.sharding.Mesh"),
            ("jaxlib._jax.Device", "py:class", "_autosummary/jax.Device.html#jax.Device"),
            ("jax.Device", "py:class", "_autosummary/jax.Device.html#jax.Device"),
        ],
    },
    "flax": {
        "project": "Flax",
        "objects": [
            (f"flax.nnx.{name}", "py:class", _NNX + f"{page}.html#flax.nnx.{name}")
            for name, page in [
                ("Module", "module"),
                ("Rngs", "rnglib"),
                ("State", "state"),
                ("Dropout", "nn/stochastic"),
                ("Linear", "nn/linear"),
                ("Conv", "nn/linear"),
                ("Embed", "nn/linear"),
                ("BatchNorm", "nn/normalization"),
                ("LayerNorm", "nn/normalization"),
                ("MultiHeadAttention", "nn/attention"),
                ("Optimizer", "training/optimizer"),
            ]
        ]
        + [
            ("flax.nnx.module.Module", "py:class", _NNX + "module.html#flax.nnx.Module"),
            ("flax.nnx.rnglib.Rngs", "py:class", _NNX + "rnglib.html#flax.nnx.Rngs"),
            ("nnx.State", "py:class", _NNX + "state.html#flax.nnx.State"),
            ("flax.nnx.split", "py:function", _NNX + "graph.html#flax.nnx.split"),
            ("flax.nnx.merge", "py:function", _NNX + "graph.html#flax.nnx.merge"),
        ],
    },
    "flax_linen": {
        "project": "Flax Linen",
        "objects": [
            ("flax.linen.Dropout", "py:class", _LINEN + "layers.html#flax.linen.Dropout"),
            ("flax.linen.Module", "py:class", _LINEN + "module.html#flax.linen.Module"),
            (
                "flax.linen.module.Module",
                "py:class",
                _LINEN + "module.html#flax.linen.Module",
            ),
        ],
    },
    "optax": {
        "project": "Optax",
        "objects": [
            (f"optax.{name}", f"py:{role}", f"api/{page}.html#optax.{name}")
            for name, role, page in [
                ("GradientTransformation", "class", "transformations"),
                ("OptState", "data", "transformations"),
                ("Schedule", "data", "optimizer_schedules"),
                ("adam", "function", "optimizers"),
                ("adamw", "function", "optimizers"),
                ("sgd", "function", "optimizers"),
                ("chain", "function", "combining_optimizers"),
                ("add_decayed_weights", "function", "transformations"),
                ("cosine_decay_schedule", "function", "optimizer_schedules"),
            ]
        ]
        + [
            (
                "optax._src.base.GradientTransformation",
                "py:class",
                "api/transformations.html#optax.GradientTransformation",
            )
        ],
    },
    "numpy": {
        "project": "NumPy",
        "objects": [
            ("numpy.ndarray", "py:class", "reference/generated/numpy.ndarray.html#numpy.ndarray"),
            ("numpy.bool", "py:class", "reference/arrays.scalars.html#numpy.bool"),
            ("numpy.number", "py:class", "reference/arrays.scalars.html#numpy.number"),
            ("numpy.float32", "py:class", "reference/arrays.scalars.html#numpy.float32"),
            (
                "numpy.random.Generator",
                "py:class",
                "reference/random/generator.html#numpy.random.Generator",
            ),
        ],
    },
    "python": {
        "project": "Python",
        "objects": [
            (name, "py:class", f"library/{page}.html#{name}")
            for name, page in [
                ("int", "functions"),
                ("float", "functions"),
                ("bool", "functions"),
                ("complex", "functions"),
                ("object", "functions"),
                ("str", "stdtypes"),
                ("bytes", "stdtypes"),
                ("tuple", "stdtypes"),
                ("list", "stdtypes"),
                ("dict", "stdtypes"),
                ("os.PathLike", "os"),
                ("pathlib.Path", "pathlib"),
                ("typing.Any", "typing"),
                ("typing.NamedTuple", "typing"),
                ("collections.abc.Callable", "collections.abc"),
                ("collections.abc.Iterable", "collections.abc"),
                ("collections.abc.Iterator", "collections.abc"),
                ("collections.abc.Mapping", "collections.abc"),
                ("collections.abc.Sequence", "collections.abc"),
            ]
        ]
        + [
            (name, "py:exception", f"library/exceptions.html#{name}")
            for name in ["ValueError", "TypeError", "KeyError", "FileNotFoundError", "RuntimeError"]
        ]
        + [
            ("None", "py:data", "library/constants.html#None"),
            ("str.format", "py:method", "library/stdtypes.html#str.format"),
        ],
    },
    "matplotlib": {
        "project": "Matplotlib",
        "objects": [
            (
                "matplotlib.figure.Figure",
                "py:class",
                "api/_as_gen/matplotlib.figure.Figure.html#matplotlib.figure.Figure",
            ),
        ],
    },
}


def inventory_bytes(project: str, objects) -> bytes:
    """Sphinx inventory version 2: a plain header, then zlib-compressed entries."""
    header = (
        "# Sphinx inventory version 2\n"
        f"# Project: {project}\n"
        "# Version: \n"
        "# The remainder of this file is compressed using zlib.\n"
    )
    # name domain:role priority uri dispname ('-': the name itself)
    body = "".join(f"{name} {role} 1 {uri} -\n" for name, role, uri in sorted(objects))
    return header.encode() + zlib.compress(body.encode(), 9)


def main() -> None:
    for name, spec in PROJECTS.items():
        (HERE / f"{name}.inv").write_bytes(inventory_bytes(spec["project"], spec["objects"]))


if __name__ == "__main__":
    main()
