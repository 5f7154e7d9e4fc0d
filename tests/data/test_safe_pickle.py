import collections
import os
import pickle
import pickletools

import numpy as np
import pytest

from hieroaction.data.safe_pickle import (
    load_pickle,
    load_pickled,
    to_float,
    to_float_list,
    to_int,
    to_str,
)
from hieroaction.errors import DataError, UnsafePickleError
from tests.data.diving_fixtures import py2_pickle_bytes

PLAIN = {
    ("FINADivingWorldCup2021_Men3m_final_r1", 8): {
        "labels": np.arange(6, dtype=np.int64),
        "judges": np.array([7.0, 7.5, 8.0]),
        "fortran": np.asfortranarray(np.arange(6.0).reshape(2, 3)),
        "names": {np.int64(2): "Back", np.int64(36): "Entry"},
        "score": np.float64(68.8),
        "flag": np.bool_(True),
    },
    "containers": [1, 2.5, "text", None, True, (1, 2), {1, 2}, frozenset({3}), 2**80, 1 + 2j],
    "bytes": [b"\xff\x00", b"", bytearray(b"xy")],
    "ordered": collections.OrderedDict(a=1, b=2),
    "default": collections.defaultdict(list, {"k": [1]}),
    "objects": np.array(["x", None, 3], dtype=object),
}


def _same(a, b) -> bool:
    if isinstance(a, np.ndarray):
        return isinstance(b, np.ndarray) and a.dtype == b.dtype and a.shape == b.shape and all(
            _same(x, y) for x, y in zip(a.ravel().tolist(), b.ravel().tolist())
        )
    if isinstance(a, dict):
        return type(a) is type(b) and a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)):
        return type(a) is type(b) and len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    return type(a) is type(b) and a == b


@pytest.mark.parametrize("protocol", range(0, pickle.HIGHEST_PROTOCOL + 1))
def test_plain_data_and_numpy_round_trip_under_every_protocol(tmp_path, protocol):
    path = tmp_path / "plain.pkl"
    path.write_bytes(pickle.dumps(PLAIN, protocol=protocol))
    assert _same(PLAIN, load_pickle(path))


def test_python2_numpy1_pickles_load(tmp_path):
    # Raw array bytes above 127 are what needs encoding="latin1" in Python 2 pickles.
    obj = {(1, 1): {"judge_scores": np.array([8.5, 9.0, -1.25]), "ss_no": 7},
           (np.int64(2), 3): ["<sos>", "nice", "<eos>"], "scalar": np.float64(-2.75)}
    data = py2_pickle_bytes(obj)
    ops = {op.name for op, _, _ in pickletools.genops(data)}
    assert "SHORT_BINSTRING" in ops and b"numpy.core.multiarray\n_reconstruct" in data
    with pytest.raises(UnicodeDecodeError):  # what a plain pickle.load does with them
        pickle.loads(data)
    path = tmp_path / "py2.pkl"
    path.write_bytes(data)
    out = load_pickle(path)
    np.testing.assert_array_equal(out[(1, 1)]["judge_scores"], [8.5, 9.0, -1.25])
    assert out[(2, 3)] == ["<sos>", "nice", "<eos>"]
    key = next(k for k in out if isinstance(k, tuple) and k[1] == 3)
    assert isinstance(key[0], np.int64)
    assert out["scalar"] == np.float64(-2.75) and isinstance(out["scalar"], np.float64)


@pytest.mark.parametrize("module", ["numpy.core", "numpy._core"])
def test_numpy_1_and_2_module_names_both_load(tmp_path, module):
    data = pickle.dumps({"a": np.arange(3), "s": np.int64(5)}, protocol=2)
    # Protocol 2 names globals as newline-terminated text, so the module can be renamed in place.
    data = data.replace(b"numpy._core.", f"{module}.".encode())
    assert f"{module}.multiarray\n_reconstruct".encode() in data
    path = tmp_path / "renamed.pkl"
    path.write_bytes(data)
    out = load_pickle(path)
    np.testing.assert_array_equal(out["a"], np.arange(3))
    assert out["s"] == 5 and isinstance(out["s"], np.int64)


class _Opens:
    """Unpickling it creates a file: a visible stand-in for arbitrary code."""

    def __init__(self, target: str) -> None:
        self.target = target

    def __reduce__(self):
        return (open, (self.target, "w"))


class _System:
    def __reduce__(self):
        return (os.system, ("echo pwned",))


def test_malicious_pickle_is_refused_before_it_runs(tmp_path):
    marker = tmp_path / "marker"
    data = pickle.dumps({"ok": [1, 2], "evil": _Opens(str(marker))})
    pickle.loads(data)  # the unrestricted unpickler runs the payload ...
    assert marker.exists()
    marker.unlink()
    path = tmp_path / "evil.pkl"
    path.write_bytes(data)
    with pytest.raises(UnsafePickleError) as info:  # ... the restricted one does not
        load_pickle(path)
    assert not marker.exists()
    assert str(path) in str(info.value) and "io.open" in str(info.value)


def test_os_system_is_refused(tmp_path):
    path = tmp_path / "system.pkl"
    path.write_bytes(pickle.dumps([np.arange(2), _System()], protocol=2))
    with pytest.raises(UnsafePickleError, match=r"system\.pkl: refused to load the global (posix|nt)\.system"):
        load_pickle(path)


@pytest.mark.parametrize(
    "module, name",
    [("builtins", "eval"), ("builtins", "exec"), ("builtins", "getattr"), ("builtins", "__import__"),
     ("__builtin__", "eval"), ("builtins", "object"), ("builtins", "type"), ("subprocess", "Popen"),
     ("copyreg", "_reconstructor"), ("copy_reg", "_reconstructor"), ("numpy", "load"),
     ("numpy.core.multiarray", "fromfile"), ("numpy._core.multiarray", "frombuffer"),
     ("numpy.testing._private.utils", "runstring"), ("collections", "namedtuple"), ("_codecs", "decode")],
)
@pytest.mark.parametrize("opcode", ["GLOBAL", "STACK_GLOBAL", "INST"])
def test_every_other_global_is_refused(tmp_path, module, name, opcode):
    if opcode == "GLOBAL":
        data = b"c" + f"{module}\n{name}\n".encode() + b"(S'x'\ntR."
    elif opcode == "STACK_GLOBAL":
        data = pickle.PROTO + b"\x04" + pickle.SHORT_BINUNICODE + bytes([len(module)]) + module.encode()
        data += pickle.SHORT_BINUNICODE + bytes([len(name)]) + name.encode() + pickle.STACK_GLOBAL + b"."
    else:
        data = b"(S'x'\ni" + f"{module}\n{name}\n".encode() + b"."
    path = tmp_path / "evil.pkl"
    path.write_bytes(data)
    with pytest.raises(UnsafePickleError, match=f"{module}.{name}"):
        load_pickle(path)


def test_truncated_empty_and_foreign_files(tmp_path):
    good = pickle.dumps({("a", 1): np.arange(100)})
    cases = {"truncated.pkl": good[: len(good) // 2], "empty.pkl": b"", "text.pkl": b"video,score\n1,2\n",
             "json.pkl": b'{"a": 1}'}
    for name, data in cases.items():
        path = tmp_path / name
        path.write_bytes(data)
        with pytest.raises(DataError, match="truncated or not a pickle") as info:
            load_pickle(path)
        assert str(path) in str(info.value)
        assert not isinstance(info.value, UnsafePickleError)
    with pytest.raises(DataError, match="no such file"):
        load_pickle(tmp_path / "absent.pkl")
    with pytest.raises(DataError, match="no such file"):
        load_pickle(tmp_path)


def test_load_pickled_checks_the_container(tmp_path):
    path = tmp_path / "split.pkl"
    path.write_bytes(pickle.dumps({"not": "a list"}))
    with pytest.raises(DataError, match=r"split\.pkl: expected a list of keys, got a dict"):
        load_pickled(path, list, "a list of keys")
    assert load_pickled(path, dict, "a dict") == {"not": "a list"}


def test_value_helpers_accept_python_and_numpy_scalars():
    assert to_int(np.int64(7), "x") == 7 and type(to_int(np.int64(7), "x")) is int
    assert to_int(12.0, "x") == 12
    assert to_float(np.float64(2.5), "x") == 2.5 and type(to_float(np.float32(2.5), "x")) is float
    assert to_float_list(np.array([1.0, 2.0]), "j") == [1.0, 2.0]
    assert to_float_list([np.float64(1.5), 2], "j") == [1.5, 2.0]
    assert to_str(b"caf\xe9", "s") == "café"
    for bad in ("3", None, True, 2.5, float("nan")):
        with pytest.raises(ValueError, match="start_frame"):
            to_int(bad, "start_frame")
    for bad in ("3.5", None, float("inf"), False):
        with pytest.raises(ValueError, match="score"):
            to_float(bad, "score")
    with pytest.raises(ValueError, match="judge_scores"):
        to_float_list("n/a", "judge_scores")
    with pytest.raises(ValueError, match="1-D"):
        to_float_list(np.zeros((2, 2)), "judge_scores")
    with pytest.raises(ValueError, match="name"):
        to_str(5, "name")
