"""The package keeps its shape: no import cycles, the library apart from the
experiments, private Keras/TF names in one module, small modules, one
configuration surface, and guards around the Keras routing."""

import ast
import inspect
from pathlib import Path

import pytest
import tensorflow as tf
import keras

import tf_sparsesign
from tf_sparsesign import config as config_lib
from tf_sparsesign.aggregation import adversary_hook, interfaces
from tf_sparsesign.aggregation import memory as memory_lib
from tf_sparsesign.aggregation import registry
from tf_sparsesign.aggregation.apply import DenseGradients, SparseSGD
from tf_sparsesign.aggregation.exchange import ExchangeSetup
from tf_sparsesign.aggregation.exchange import downlink as downlink_lib
from tf_sparsesign.aggregation.exchange.collectives import (LOCAL,
                                                            HostCollectives)
from tf_sparsesign.aggregation.framing import SettingsFrame
from tf_sparsesign.aggregation.layout import Layout
from tf_sparsesign.aggregation.probe import ScratchFactory
from tf_sparsesign.experiments import Adversary
from tf_sparsesign.integration import _patches

PACKAGE = Path(tf_sparsesign.__file__).resolve().parent
MAX_MODULE_LINES = 320   # "about 300"
MAX_CLASS_LINES = 160    # "about 150"
DEVICES = [f"/cpu:{i}" for i in range(4)]


def modules():
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = path.relative_to(PACKAGE.parent).with_suffix("")
        name = ".".join(rel.parts)
        if name.endswith(".__init__"):
            name = name[:-len(".__init__")]
        yield name, path


KNOWN = dict(modules())
#: Underscore names that are public API (namedtuple methods).
PUBLIC_UNDERSCORE = {"_replace", "_asdict", "_fields", "_make"}


def imports_of(name, path):
    """Package modules ``name`` imports, at any depth of the file."""
    is_package = path.name == "__init__.py"
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names
                    if a.name.startswith("tf_sparsesign")}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = name.split(".")
                base = base[:len(base) - node.level + (1 if is_package
                                                       else 0)]
                target = ".".join(base + ([node.module] if node.module
                                          else []))
            else:
                target = node.module or ""
            if target.startswith("tf_sparsesign"):
                # "from pkg import module" imports the module (and, like
                # every import, its parent packages: not counted here);
                # "from pkg import name" reads pkg itself.
                for a in node.names:
                    sub = f"{target}.{a.name}"
                    out.add(sub if sub in KNOWN else target)
    return {m for m in out if m in KNOWN and m != name}


def import_graph():
    return {name: imports_of(name, path) for name, path in modules()}


def test_no_import_cycle_anywhere_in_the_package():
    graph = import_graph()
    # A package imports its parents implicitly; count only explicit edges.
    state, stack = {}, []

    def visit(node):
        state[node] = "open"
        stack.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == "open":
                cycle = stack[stack.index(nxt):] + [nxt]
                pytest.fail("import cycle: " + " -> ".join(cycle))
            if nxt not in state:
                visit(nxt)
        stack.pop()
        state[node] = "done"

    for node in sorted(graph):
        if node not in state:
            visit(node)


def test_the_library_never_imports_the_experiments():
    graph = import_graph()
    for name, deps in graph.items():
        if name.startswith("tf_sparsesign.experiments") or \
                name == "tf_sparsesign.__main__":
            continue  # the experiments, and the program that runs them
        bad = sorted(d for d in deps
                     if d.startswith("tf_sparsesign.experiments"))
        assert not bad, f"{name} imports {bad}"


#: The guarded package: every private Keras 3 / TF name in ``_patches``
#: (replacements, names, collectives), every private tf_keras (Keras 2)
#: name in ``_patches.keras2`` (imported only when tf_keras is in use, with
#: its own supported version range and target checks).
PATCHES = "tf_sparsesign.integration._patches"
PRIVATE_MODULES = ("keras.src", "tensorflow.python", "tf_keras.src")


def private_touches(path):
    """Imports of keras.src / tensorflow.python / tf_keras.src, and
    attributes with one leading underscore read from anything but
    self/cls/a module alias."""
    tree = ast.parse(path.read_text())
    aliases = {a.asname or a.name for n in ast.walk(tree)
               if isinstance(n, (ast.Import, ast.ImportFrom))
               for a in n.names}
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and \
                node.module.startswith(PRIVATE_MODULES):
            found.append(node.module)
        if isinstance(node, ast.Import):
            found += [a.name for a in node.names if a.name.startswith(
                PRIVATE_MODULES)]
        if isinstance(node, ast.Attribute) and node.attr.startswith("_") \
                and not node.attr.startswith("__") and \
                node.attr not in PUBLIC_UNDERSCORE:
            owner = node.value
            if isinstance(owner, ast.Name) and (
                    owner.id in ("self", "cls") or owner.id in aliases):
                continue
            found.append(node.attr)
    return found


def test_private_keras_and_tf_names_only_in_patches():
    for name, path in modules():
        if name == PATCHES or name.startswith(PATCHES + "."):
            continue
        assert private_touches(path) == [], name
    # ... and the detector does see them where they are.
    touched = [t for path in (PACKAGE / "integration" / "_patches").glob(
        "*.py") for t in private_touches(path)]
    assert "keras.src.utils" in touched and "_var_key" in touched
    touched = private_touches(PACKAGE / "integration" / "_patches" /
                              "keras2.py")
    assert "_variables" in touched


def test_modules_and_classes_stay_small():
    for name, path in modules():
        text = path.read_text()
        assert len(text.splitlines()) <= MAX_MODULE_LINES, name
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, ast.ClassDef):
                lines = node.end_lineno - node.lineno + 1
                assert lines <= MAX_CLASS_LINES, f"{name}.{node.name}"


def test_registry_names_are_the_settings_choices_and_load():
    assert config_lib.CHOICES["method"] == tuple(registry.METHODS)
    assert config_lib.CHOICES["wire"] == (*registry.CODECS, "auto")
    assert config_lib.CHOICES["vote"] == tuple(registry.VOTES)
    assert config_lib.CHOICES["aggregation"] == (*registry.EXCHANGES, "auto")
    assert config_lib.CHOICES["worker_momentum"] == tuple(
        registry.WORKER_MOMENTA)
    # one byte model per exchange, under the exchange's own name
    assert set(tf_sparsesign.policy.BYTE_MODELS) == set(registry.EXCHANGES)
    for spec in (*registry.METHODS.values(), *registry.VOTES.values(),
                 registry.VALUES_COMBINER):
        assert isinstance(registry.load(spec), type), spec
    for spec in registry.CODECS.values():
        codec = registry.load(spec)(1000, 10, False)
        assert codec.words > 0 and codec.name in registry.CODECS


# -- one configuration surface -------------------------------------------

NON_DEFAULT = dict(k=7, error_feedback=False, on_invalid="drop",
                   wire="rice", method="random_k", vote="fd", seed=3)


def entry_points():
    return {
        "SparseSignStrategy": lambda **kw: tf_sparsesign.SparseSignStrategy(
            devices=DEVICES[:2], **kw),
        "SparseSignOptimizer": lambda **kw: tf_sparsesign.SparseSignOptimizer(
            keras.optimizers.SGD(), **kw),
    }


def test_every_entry_point_takes_every_setting_and_documents_it():
    expected = config_lib.SparseSignConfig(density=0.05, **NON_DEFAULT)
    for name, make in entry_points().items():
        made = make(density=0.05, **NON_DEFAULT)
        assert made.sparse_sign_config == expected, name
    for cls in (tf_sparsesign.SparseSignStrategy,
                tf_sparsesign.MultiWorkerSparseSignStrategy,
                tf_sparsesign.SparseSignOptimizer):
        assert "{{settings}}" not in cls.__doc__
        for field in config_lib.FIELDS:
            assert f"      {field}: " in cls.__doc__, (cls.__name__, field)


def test_unknown_setting_names_the_valid_ones():
    for name, make in entry_points().items():
        with pytest.raises(TypeError, match=r"unknown setting\(s\) "
                                            r"\['densty'\].*density, k,"):
            make(densty=0.1)


def test_wrapper_config_round_trips_every_setting():
    opt = tf_sparsesign.SparseSignOptimizer(keras.optimizers.Adam(),
                                            density=0.05, **NON_DEFAULT)
    clone = tf_sparsesign.SparseSignOptimizer.from_config(opt.get_config())
    assert clone.sparse_sign_config == opt.sparse_sign_config
    assert set(opt.get_config()) == {"name", "optimizer",
                                     *config_lib.SHARED}


def test_mismatch_message_lists_every_shared_setting():
    cfg = config_lib.SparseSignConfig()
    text = config_lib.mismatch_message([1, 2], 1, cfg)
    for field in config_lib.SHARED:
        assert field in text


# -- guards around the Keras routing --------------------------------------

@pytest.mark.parametrize("version", ["2.15.0", "3.4.1", "4.0.0", "3.x"])
def test_unsupported_keras_version_fails_naming_version_and_range(version):
    with pytest.raises(RuntimeError, match=rf"Keras {version} is not "
                                           r"supported; supported: Keras "
                                           r">=3\.5, <4\.0"):
        _patches.check_keras_version(version)


def test_supported_keras_versions_pass():
    for version in ("3.5.0", "3.15.1", keras.__version__):
        _patches.check_keras_version(version)


def test_missing_patch_target_is_named():
    target = ("keras.src.optimizers.base_optimizer", "BaseOptimizer",
              "_renamed_in_a_future_keras")
    with pytest.raises(RuntimeError, match="BaseOptimizer."
                                           "_renamed_in_a_future_keras"):
        _patches.resolve([target])
    assert len(_patches.resolve()) == len(_patches.TARGETS)


def test_training_stops_if_keras_bypasses_the_patched_aggregation(
        monkeypatch):
    """A Keras that stopped calling _all_reduce_sum_gradients would train
    dense without a word; the guard turns that into an error."""
    from keras.src.backend.tensorflow import optimizer as tf_optimizer

    def update_step_without_aggregation(self, grads, variables, lr):
        pass  # a future Keras that aggregates somewhere else

    monkeypatch.setattr(tf_optimizer.TFOptimizer, "_backend_update_step",
                        update_step_without_aggregation)
    strategy = tf_sparsesign.SparseSignStrategy(density=0.5,
                                                devices=DEVICES)
    with strategy.scope():
        model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
        model.compile(optimizer=keras.optimizers.SGD(0.1), loss="mse")
    with pytest.raises(RuntimeError, match="would have trained with the "
                                           "dense all-reduce"):
        model.fit(tf.ones((8, 3)), tf.zeros((8, 2)), verbose=0)


# -- the parts' contracts (aggregation/interfaces.py) ---------------------

def registry_tables():
    """Every registry table as ``{name: spec}`` (single specs as one
    entry)."""
    return {"METHODS": registry.METHODS, "EVERY_SIGN": {
                "every_sign": registry.EVERY_SIGN},
            "CODECS": registry.CODECS, "VOTES": registry.VOTES,
            "PACKED_VOTES": registry.PACKED_VOTES,
            "VALUES_COMBINER": {"values": registry.VALUES_COMBINER},
            "DOWNLINKS": {f"{f}/{d}": cls for (f, d), cls in
                          downlink_lib.FORMATS.items()},
            "EXCHANGES": {n: e.part for n, e in registry.EXCHANGES.items()},
            "WORKER_MOMENTA": {n: spec for n, spec in
                               registry.WORKER_MOMENTA.items() if spec}}


def build_part(table, spec):
    """An instance of a registry entry, built the way build.py builds it
    (small sizes, scratch state, one-host collectives)."""
    cls = spec if isinstance(spec, type) else registry.load(spec)
    if table in ("METHODS", "EVERY_SIGN"):
        return cls(0, True)
    if table == "CODECS":
        return cls(100, 10, False, "drop")
    if table in ("VOTES", "PACKED_VOTES", "VALUES_COMBINER"):
        return cls(ScratchFactory(), 4, "drop")
    if table == "DOWNLINKS":
        return cls(25, 8, 4, "drop")
    if table == "WORKER_MOMENTA":
        return cls(build_part("METHODS", registry.METHODS["sign_vote"]),
                   [2], [tf.Variable(tf.zeros([6]))],
                   [tf.Variable(tf.zeros([6]))], 0.9, 0.99)
    config = config_lib.SparseSignConfig()
    return cls(ExchangeSetup(
        num_elements=100, total_k=10, num_replicas=4,
        codec=registry.load(registry.CODECS["int32"]), with_values=False,
        on_invalid="drop", rule=build_part("VOTES", registry.VOTES["plain"]),
        frame=SettingsFrame(config, 1), collectives=LOCAL))


def protocol_members(protocol):
    """``{name: signature or None}`` of a Protocol's methods and attributes
    (None: an attribute)."""
    names = set(getattr(protocol, "__annotations__", {}))
    names |= {n for n, v in vars(protocol).items()
              if callable(v) and not n.startswith("_")}
    return {n: (inspect.signature(vars(protocol)[n])
                if callable(vars(protocol).get(n)) else None)
            for n in sorted(names)}


def assert_satisfies(part, protocol, what):
    assert isinstance(part, protocol), f"{what} is not a {protocol.__name__}"
    for name, signature in protocol_members(protocol).items():
        assert hasattr(part, name), f"{what} lacks {protocol.__name__}.{name}"
        if signature is None:
            continue
        want = [p for p in signature.parameters if p != "self"]
        got = inspect.signature(getattr(part, name)).parameters
        assert list(got)[:len(want)] == want, (
            f"{what}.{name}{tuple(got)} does not take "
            f"{protocol.__name__}.{name}'s arguments {tuple(want)}")
        assert all(p.default is not inspect.Parameter.empty
                   for p in list(got.values())[len(want):]), (what, name)


def test_every_registry_entry_satisfies_its_protocol():
    tables = registry_tables()
    assert set(tables) == set(interfaces.PROTOCOLS)
    for table, entries in tables.items():
        for name, spec in entries.items():
            part = build_part(table, spec)
            assert_satisfies(part, interfaces.PROTOCOLS[table],
                             f"{table}[{name!r}]")


def test_the_other_parts_satisfy_their_protocols():
    v = tf.Variable(tf.zeros([6]))
    ef = memory_lib.make([tf.Variable(tf.zeros([6]))],
                         build_part("METHODS", registry.METHODS["sign_vote"]),
                         [2], ["v"])
    none = memory_lib.make([], build_part("METHODS",
                                          registry.METHODS["random_k"]),
                           [2], ["v"])
    layout = Layout([v], lambda x: x.ref())
    for part, protocol in (
            (ef, interfaces.Memory), (none, interfaces.Memory),
            (ef.begin(), interfaces.MemoryStep),
            (none.begin(), interfaces.MemoryStep),
            (LOCAL, interfaces.Collectives),
            (HostCollectives(tf.distribute.get_strategy(), None),
             interfaces.Collectives),
            (DenseGradients(layout), interfaces.Apply),
            (SparseSGD(lambda: 0.1, layout), interfaces.Apply),
            (adversary_hook.HONEST, interfaces.Adversary),
            (Adversary("signflip", (0,)).bind(4), interfaces.Adversary),
            (ScratchFactory(), interfaces.StateFactory)):
        assert_satisfies(part, protocol, type(part).__name__)


def test_the_protocol_check_catches_a_wrong_signature():
    class Wrong:
        name, words = "w", 1

        def encode(self, codes):  # values missing
            return codes

        def decode(self, rows):
            return rows

    with pytest.raises(AssertionError, match="does not take"):
        assert_satisfies(Wrong(), interfaces.Codec, "Wrong")


def aggregation_sources():
    for name, path in modules():
        if name.startswith("tf_sparsesign.aggregation"):
            yield name, path, ast.parse(path.read_text())


#: ``getattr`` reads allowed in aggregation/: variables' own attributes
#: (a Keras 3 variable's path, a distributed variable's values), and the
#: registry loading a part's class from its module.
GETATTR_ALLOWED = {"path", "values"}


def test_no_hasattr_or_getattr_probes_on_parts():
    for name, _, tree in aggregation_sources():
        for node in ast.walk(tree):
            if not (isinstance(node, ast.Call) and
                    isinstance(node.func, ast.Name)):
                continue
            assert node.func.id != "hasattr", f"hasattr in {name}"
            if node.func.id == "getattr":
                attr = node.args[1]
                literal = isinstance(attr, ast.Constant)
                assert (literal and attr.value in GETATTR_ALLOWED) or (
                    name.endswith(".registry") and not literal), (
                    f"getattr probe in {name}: {ast.unparse(node)}")


def user_names():
    """Every name a user can give for method, wire, vote and aggregation."""
    return {*registry.METHODS, *registry.CODECS, *registry.VOTES,
            *registry.AGGREGATIONS}


def test_no_method_or_exchange_name_compared_outside_the_registry():
    names = user_names()
    for name, _, tree in aggregation_sources():
        if name.endswith(".registry"):
            continue
        for node in ast.walk(tree):
            if not isinstance(node, ast.Compare):
                continue
            literals = [c.value for c in ast.walk(node)
                        if isinstance(c, ast.Constant) and
                        isinstance(c.value, str)]
            bad = [lit for lit in literals if lit in names]
            assert not bad, f"{name} compares against {bad}: " \
                f"{ast.unparse(node)}"
