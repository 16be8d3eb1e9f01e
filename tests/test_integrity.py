"""Nothing silently wrong, nothing lost: seeds use all their bits, saves never
replace a user's file unasked and are atomic as a set, a full disk or an unwritable
folder is a clear error found before the compute, every metric of a non-finite
model is non-finite and counted, and quantiles rank infinite values."""

from __future__ import annotations

import contextlib
import errno
import importlib
import io
import json
import os
import subprocess
import sys
import textwrap
import time
import zipfile
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import collapse_jax as cj
from collapse_jax import _rng
from collapse_jax.cli import main as cli_main
from collapse_jax.engine import checkpoint as _checkpoint
from collapse_jax.metrics import quantile_ci

kernel = importlib.import_module("collapse_jax.engine.kernel")
sim_mod = importlib.import_module("collapse_jax.engine.simulate")  # the module (the package exports the function)
ROOT = Path(__file__).resolve().parent.parent
TINY = dict(n=10, generations=3, chains=8, progress=False)


# --------------------------------------------------------------------------- helpers
def _same(a: cj.Result, b: cj.Result) -> bool:
    return all(np.array_equal(a.metrics[k], b.metrics[k], equal_nan=True) for k in a.metrics)


@contextlib.contextmanager
def _mounted_tmpfs(path: Path, options: str):
    """A tmpfs at ``path`` (root only); skips the test where mounting is not allowed."""
    path.mkdir(parents=True, exist_ok=True)
    if os.geteuid() != 0:
        pytest.skip("needs root to mount a small tmpfs")
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(path)], capture_output=True)
    if r.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {r.stderr.decode().strip()}")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], capture_output=True)


@pytest.fixture
def readonly_dir(tmp_path):
    """A folder nobody can write into (a read-only tmpfs as root, mode 0555 otherwise)."""
    d = tmp_path / "ro"
    if os.geteuid() == 0:
        with _mounted_tmpfs(d, "ro,size=64k"):
            yield d
    else:
        d.mkdir()
        d.chmod(0o555)
        yield d
        d.chmod(0o755)


# --------------------------------------------------------------------------- 1. seeds
def test_seeds_use_all_64_bits_in_both_dtypes():
    for dtype in ("float32", "float64"):
        base = cj.simulate(cj.Gaussian(), seed=0, dtype=dtype, **TINY)
        for s in (2**32, 2**33, 2**63 + 7, 2**64 - 1):
            other = cj.simulate(cj.Gaussian(), seed=s, dtype=dtype, **TINY)
            assert not _same(base, other), (dtype, s)
            assert other.seed == s


def test_root_key_keeps_every_existing_seed_below_2_32():
    for s in (0, 1, 12345, 2**31 - 1, 2**31, 2**32 - 1):
        got = jax.random.key_data(_rng.root_key(s))
        want = np.array([0, s], dtype=np.uint32)
        np.testing.assert_array_equal(got, want)
    np.testing.assert_array_equal(jax.random.key_data(_rng.root_key(2**32 + 3)), [1, 3])
    np.testing.assert_array_equal(jax.random.key_data(_rng.root_key(2**64 - 1)), [2**32 - 1, 2**32 - 1])


def test_cli_seed_uses_all_bits_and_refuses_out_of_range(tmp_path, capsys):
    args = ["run", "--n", "10", "--generations", "3", "--chains", "8", "--quiet"]
    assert cli_main(args + ["--seed", "0", "--out", str(tmp_path / "a")]) == 0
    assert cli_main(args + ["--seed", str(2**32), "--out", str(tmp_path / "b")]) == 0
    a, b = cj.load(tmp_path / "a" / "result.nc"), cj.load(tmp_path / "b" / "result.nc")
    assert a.seed == 0 and b.seed == 2**32 and not _same(a, b)
    with pytest.raises(SystemExit):
        cli_main(args + ["--seed", str(2**64), "--out", str(tmp_path / "c")])
    assert "must be an int in [0, 2**64)" in capsys.readouterr().err


# --------------------------------------------------------------------------- 2. save names, overwrite
def test_save_never_renames_over_another_result(tmp_path):
    r1 = cj.simulate(cj.Gaussian(), seed=1, **TINY)
    r2 = cj.simulate(cj.Gaussian(), seed=2, **TINY)
    p1, p2 = r1.save(tmp_path / "run.1"), r2.save(tmp_path / "run.2")
    assert (p1.name, p2.name) == ("run.1.nc", "run.2.nc")
    assert {p.name for p in tmp_path.iterdir()} == {"run.1.nc", "run.1.csv", "run.2.nc", "run.2.csv"}
    assert cj.load(p1).seed == 1 and cj.load(p2).seed == 2
    assert r1.save(tmp_path / "x.nc").name == "x.nc"  # an .nc name is used as given


def test_save_refuses_to_overwrite_unless_asked(tmp_path):
    r1 = cj.simulate(cj.Gaussian(), seed=1, **TINY)
    r2 = cj.simulate(cj.Gaussian(), seed=2, **TINY)
    path = r1.save(tmp_path / "run.nc")
    before = path.read_bytes(), path.with_suffix(".csv").read_bytes()
    with pytest.raises(FileExistsError, match="overwrite=True"):
        r2.save(path)
    assert (path.read_bytes(), path.with_suffix(".csv").read_bytes()) == before
    # a CSV alone (left by another tool) is protected too
    (tmp_path / "other.csv").write_text("mine")
    with pytest.raises(FileExistsError):
        r2.save(tmp_path / "other.nc")
    assert (tmp_path / "other.csv").read_text() == "mine" and not (tmp_path / "other.nc").exists()
    r2.save(path, overwrite=True)
    assert cj.load(path).seed == 2
    with pytest.raises(ValueError, match="netCDF file's name"):
        r2.save(tmp_path / "table.csv")


def test_cli_refuses_existing_result_without_force(tmp_path, monkeypatch, capsys):
    args = ["run", "--n", "10", "--generations", "3", "--chains", "8", "--quiet", "--out", str(tmp_path)]
    assert cli_main(args + ["--seed", "1"]) == 0
    calls = []
    monkeypatch.setattr(sim_mod, "simulate", lambda *a, **k: calls.append(1))
    assert cli_main(args + ["--seed", "2"]) == 2
    assert "pass --force" in capsys.readouterr().err and not calls  # refused before running
    monkeypatch.undo()
    assert cli_main(args + ["--seed", "2", "--force"]) == 0
    assert cj.load(tmp_path / "result.nc").seed == 2


# --------------------------------------------------------------------------- 4. non-finite models
def _families():
    return {
        "Gaussian d=1": cj.Gaussian(),
        "Gaussian d=3": cj.Gaussian(dim=3),
        "Categorical": cj.Categorical(np.full(5, 0.2)),
        "Ridge": cj.Ridge(dim=3),
        "GMM": cj.GMM(components=2, dim=1),
        "KDE": cj.KDE(bandwidth=0.3),
        "BayesGaussian": cj.BayesGaussian(1, 1.0, prior_var=1.0),
        "BayesLinearRegression": cj.BayesLinearRegression(dim=2),
        "HuberLocation": cj.HuberLocation(),
        "HuberRegression": cj.HuberRegression(dim=2),
        "GLM": cj.GLM(dim=2),
        "NUTSLocation": cj.NUTSLocation(warmup=5, samples=5),
        "Pressured Gaussian": cj.Pressured(cj.Gaussian(dim=2), temperature=0.9, support=0.9),
    }


def _nan_leaves(tree):
    return jax.tree.map(
        lambda x: jnp.full_like(x, jnp.nan) if isinstance(x, jax.Array) and jnp.issubdtype(x.dtype, jnp.inexact) else x,
        tree,
    )


@pytest.mark.parametrize("name", list(_families()))
def test_every_metric_of_a_nonfinite_fit_is_nonfinite(name):
    """The kernel's observation step, on a fit whose parameters are NaN: every metric
    is NaN and the fit is counted as non-finite (a tail mass used to read 1.0)."""
    family, synthesis = _families()[name], cj.Synthesis()
    if isinstance(family, cj.Pressured):  # the synthesis adds metrics of its own (accept_rate, shortfall)
        family, synthesis = family.family, family.synthesis.for_run(family.family, 10)
    params = _nan_leaves(family.blank_fit())  # a fit's structure (a KDE's truth, a posterior's, is not one)
    names = tuple(family.metric_names()) + synthesis.metric_names(family)
    cfg = kernel.KernelConfig(
        n=10, generations=1, exact=False, metrics=names, diagnostics=(), events=(),
        summary=False, kept=0, thresholds=(), sweep_fields=(), block=1,
    )  # fmt: skip
    ck = jax.random.key_data(jax.random.key(0))
    met, _, _, nonfinite = kernel.observe((family, cj.Replace(), synthesis), ck, params, jnp.int32(1), cfg)
    assert set(met) == set(names)
    assert bool(nonfinite)
    finite = [k for k, v in met.items() if np.any(np.isfinite(np.asarray(v, dtype=np.float64)))]
    assert not finite, f"{name}: metrics {finite} are finite for a NaN fit"


def test_nonfinite_fits_are_counted_in_every_metric():
    """A run whose every fit is NaN (a truth with NaN parameters, forced past the
    constructor's checks): every metric reports 0 finite and all chains non-finite in
    the streamed summary (the per-chain path shares the observation step tested above)."""
    family = _nan_leaves(cj.Gaussian(dim=3))
    chains = 16
    res = cj.simulate(family, n=10, generations=3, chains=chains, keep="summary", keep_chains=4, progress=False)
    table = res.summary()
    assert set(table.metric) == set(res.metrics) and "tail_mass" in res.metrics
    assert (table.n_finite == 0).all() and (table.n_nonfinite == chains).all()
    assert table["mean"].isna().all()


# --------------------------------------------------------------------------- 5. quantiles
def test_chain_quantiles_rank_infinities_and_count_nan():
    from collapse_jax.metrics import chain_quantiles

    rng = np.random.default_rng(0)
    x = rng.normal(size=(101, 4))
    qs = (0.05, 0.25, 0.5, 0.75, 0.95)
    np.testing.assert_allclose(chain_quantiles(x, qs)[0], np.quantile(x, qs, axis=0))
    x[:60, 0] = np.inf  # most chains infinite: median and upper quantiles are +inf
    x[:3, 1] = -np.inf  # 3 % at -inf: q05 stays finite
    x[0, 2] = np.nan
    q, nan = chain_quantiles(x, qs)
    assert np.all(np.isposinf(q[2:, 0])) and np.isfinite(q[0, 0])
    assert np.all(np.isfinite(q[:, 1]))
    np.testing.assert_allclose(q[:, 2], np.quantile(x[1:, 2], qs))
    np.testing.assert_array_equal(nan, [0, 0, 1, 0])
    est, lo, hi = quantile_ci(x, 0.95)
    assert np.isposinf(est[0]) and np.isposinf(lo[0]) and np.isposinf(hi[0])
    x[:, 3] = np.sort(x[:, 3])
    x[-4:, 3] = np.inf  # 4 of 101 infinite: q95 finite, but its interval reaches +inf
    est, lo, hi = quantile_ci(x, 0.95)
    assert np.isfinite(est[3]) and np.isfinite(lo[3]) and np.isposinf(hi[3])


def test_quantiles_of_a_run_with_infinite_kl_are_infinite():
    """1-D exact Gaussian at n = 5: the fitted variance leaves float32 range in a
    growing share of chains, whose KL to the truth is +inf; the q95 of KL must then be
    +inf (it used to be the largest finite value, with a finite interval)."""
    res = cj.simulate(
        cj.Gaussian(sampler="exact"), n=5, generations=300, chains=400, seed=3, metrics=["kl_to_truth"], progress=False
    )
    kl = res.metrics["kl_to_truth"]
    share_inf = np.isposinf(kl).mean(axis=0)
    assert share_inf[-1] > 0.5  # deep enough that most chains are infinite
    est, lo, hi = res.quantile("kl_to_truth", 0.95)
    table = res.summary("kl_to_truth")
    many = share_inf > 0.06  # more than 5 % (+ one chain) infinite: q95 is +inf
    none = share_inf == 0
    assert np.all(np.isposinf(est[many])) and np.all(np.isposinf(hi[many]))
    assert np.all(np.isposinf(table.q95.to_numpy()[many]))
    assert np.all(np.isfinite(est[none]))
    np.testing.assert_allclose(table.q95.to_numpy()[none], np.quantile(kl[:, none].astype(np.float64), 0.95, axis=0))


def test_quantile_warns_about_nan_chains():
    res = cj.simulate(_nan_leaves(cj.Gaussian()), **TINY)
    with pytest.warns(RuntimeWarning, match="8 of 8 chains have NaN"):
        est, lo, hi = res.quantile("variance", 0.5)
    assert np.all(np.isnan(est))
    assert (res.summary("variance").quantile_nan == 8).all()


# --------------------------------------------------------------------------- 6. full disk
DISK_FULL_SCRIPT = textwrap.dedent(
    """
    import sys
    import collapse_jax as cj
    folder = sys.argv[1]
    small = cj.simulate(cj.Gaussian(), n=10, generations=2, chains=4, seed=1, progress=False)
    small.save(folder + "/run.nc")
    big = cj.simulate(cj.Gaussian(), n=10, generations=200, chains=2000, seed=2, progress=False)
    try:
        big.save(folder + "/run.nc", overwrite=True)
    except OSError as e:
        print("ERROR", e.errno, e)
    big.save(sys.argv[2] + "/elsewhere.nc")  # the result is still in memory
    print("ALIVE", cj.load(folder + "/run.nc").seed)
    """
)


def test_full_disk_is_a_clear_error_and_keeps_the_old_file(tmp_path):
    with _mounted_tmpfs(tmp_path / "small", "size=256k") as small:
        script = tmp_path / "fill.py"
        script.write_text(DISK_FULL_SCRIPT)
        env = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
        r = subprocess.run(
            [sys.executable, str(script), str(small), str(tmp_path)], capture_output=True, text=True, env=env
        )
        assert r.returncode == 0, r.stderr[-2000:]  # alive: no crash inside the HDF5 library
        assert f"ERROR {errno.ENOSPC}" in r.stdout and "no space left" in r.stdout
        assert "ALIVE 1" in r.stdout  # the old result is intact
        assert sorted(p.name for p in small.iterdir()) == ["run.csv", "run.nc"]  # no temporaries left
        assert cj.load(tmp_path / "elsewhere.nc").seed == 2


# --------------------------------------------------------------------------- 7. paths checked first
def test_unwritable_checkpoint_is_refused_before_compiling(readonly_dir):
    before = kernel.trace_counts()
    with pytest.raises(ValueError, match="checkpoint=.*cannot write into"):
        cj.simulate(cj.Gaussian(), checkpoint=readonly_dir / "c.npz", n=10, generations=5, chains=7, seed=91)
    assert kernel.trace_counts() == before


def test_cli_checks_out_before_running(tmp_path, readonly_dir, monkeypatch, capsys):
    calls = []
    monkeypatch.setattr(sim_mod, "simulate", lambda *a, **k: calls.append(1))
    args = ["run", "--n", "10", "--generations", "3", "--chains", "8", "--quiet"]
    assert cli_main(args + ["--out", str(readonly_dir / "out")]) == 2
    assert "cannot write into" in capsys.readouterr().err
    (tmp_path / "afile").write_text("x")
    assert cli_main(args + ["--out", str(tmp_path / "afile")]) == 2
    assert "is not a folder" in capsys.readouterr().err
    assert not calls


def test_checkpoint_write_failure_keeps_the_result(tmp_path, monkeypatch):
    kw = dict(n=10, generations=20, chains=50, seed=4, progress=False)
    reference = cj.simulate(cj.Gaussian(), **kw)

    def full_disk(*a, **k):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(_checkpoint, "save", full_disk)
    with pytest.warns(RuntimeWarning, match="checkpoint could not be written"):
        res = cj.simulate(cj.Gaussian(), checkpoint=tmp_path / "c.npz", checkpoint_every=0, **kw)
    assert _same(res, reference)


def test_cli_saves_elsewhere_when_the_final_write_fails(tmp_path, monkeypatch, capsys):
    from collapse_jax import _files

    original = cj.Result.save
    out = tmp_path / "out"

    def failing(self, path, **kw):
        if Path(path).parent == out:
            raise _files.WriteError(errno.ENOSPC, f"could not write {path}: no space left on the device")
        return original(self, path, **kw)

    monkeypatch.setattr(cj.Result, "save", failing)
    rc = cli_main(["run", "--n", "10", "--generations", "3", "--chains", "8", "--quiet", "--out", str(out)])
    err = capsys.readouterr().err
    assert rc == 1 and "could not be saved" in err and "instead" in err
    rescued = Path(err.split("saved it to ")[1].split("'")[1])
    assert cj.load(rescued).chains == 8


# --------------------------------------------------------------------------- 9. atomic as a set
def test_save_killed_between_renames_is_finished_by_load(tmp_path, monkeypatch):
    old = cj.simulate(cj.Gaussian(), seed=1, **TINY)
    new = cj.simulate(cj.Gaussian(), seed=2, **TINY)
    path = old.save(tmp_path / "run.nc")
    real_replace, calls = os.replace, []

    def killed_at_second_rename(src, dst):
        calls.append(Path(dst).name)
        if Path(dst).name == "run.csv":
            raise KeyboardInterrupt  # the process dies here: the .nc is new, the .csv still old
        return real_replace(src, dst)

    monkeypatch.setattr(os, "replace", killed_at_second_rename)
    with pytest.raises(KeyboardInterrupt):
        new.save(path, overwrite=True)
    monkeypatch.undo()
    assert "run.csv" in calls
    loaded = cj.load(path)  # rolls the interrupted save forward
    assert loaded.seed == 2
    table = (tmp_path / "run.csv").read_text()
    assert table == new.summary().to_csv(index=False)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run.csv", "run.nc"]


def test_save_killed_before_renames_changes_nothing(tmp_path, monkeypatch):
    from collapse_jax import _files

    old = cj.simulate(cj.Gaussian(), seed=1, **TINY)
    new = cj.simulate(cj.Gaussian(), seed=2, **TINY)
    path = old.save(tmp_path / "run.nc")
    before = path.read_bytes(), (tmp_path / "run.csv").read_bytes()
    real = _files._write_tmp
    count = []

    def dies_on_second_file(target, content):
        count.append(1)
        if len(count) == 2:
            raise KeyboardInterrupt
        return real(target, content)

    monkeypatch.setattr(_files, "_write_tmp", dies_on_second_file)
    with pytest.raises(KeyboardInterrupt):
        new.save(path, overwrite=True)
    monkeypatch.undo()
    assert (path.read_bytes(), (tmp_path / "run.csv").read_bytes()) == before
    assert cj.load(path).seed == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run.csv", "run.nc"]


def test_stale_temporaries_of_killed_saves_are_removed(tmp_path):
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    pid = int(dead.stdout)
    stale = tmp_path / f".run.nc.cjtmp-{pid}-0badc0de.tmp"
    stale.write_bytes(b"\0" * 1000)
    live = tmp_path / f".run.nc.cjtmp-{os.getppid()}-0badc0de.tmp"  # a live process's: kept
    live.write_bytes(b"\0")
    cj.simulate(cj.Gaussian(), **TINY).save(tmp_path / "run.nc")
    assert not stale.exists() and live.exists()


# --------------------------------------------------------------------------- 10. late or deep errors
def test_non_netcdf_file_is_a_clear_error(tmp_path):
    bad = tmp_path / "x.nc"
    bad.write_text("not a netCDF file")
    with pytest.raises(ValueError, match="is not a netCDF file written by collapse_jax"):
        cj.load(bad)
    with pytest.raises(FileNotFoundError, match="no result file"):
        cj.load(tmp_path / "missing.nc")


def test_checkpoint_with_edited_metadata_is_refused(tmp_path):
    ckpt = tmp_path / "c.npz"
    kw = dict(n=10, generations=6, chains=40, seed=3, chunk_size=16, progress=False)
    cj.simulate(cj.Gaussian(), checkpoint=ckpt, checkpoint_every=0, **kw)
    with zipfile.ZipFile(ckpt) as z:
        entries = {name: z.read(name) for name in z.namelist()}
    meta = json.loads(bytes(np.load(io.BytesIO(entries["__meta__.npy"]))).decode())
    meta["skeleton"]["dict"]["next_chunk"]["value"] = 0  # "nothing done yet": would resume with zero chains
    buf = io.BytesIO()
    np.save(buf, np.frombuffer(json.dumps(meta).encode(), np.uint8))
    entries["__meta__.npy"] = buf.getvalue()
    with zipfile.ZipFile(ckpt, "w") as z:
        for name, data in entries.items():
            z.writestr(name, data)
    with pytest.raises(_checkpoint.CheckpointError, match="corrupt"):
        cj.simulate(cj.Gaussian(), checkpoint=ckpt, **kw)


@pytest.mark.parametrize(
    "make, exc, pattern",
    [
        (lambda: cj.FreshMix(np.array([0.1, 0.2])), TypeError, r"FreshMix: real_fraction must be a number \(one"),
        (lambda: cj.Gaussian(mean="x"), TypeError, r"Gaussian: mean must be numbers, got 'x'"),
        (lambda: cj.Gaussian(mean=1e39), ValueError, r"Gaussian: mean must lie within"),
        (lambda: cj.Gaussian(collapse_below="x"), TypeError, r"Gaussian: collapse_below must be a number > 0"),
        (lambda: cj.Gaussian(collapse_below=True), TypeError, r"Gaussian: collapse_below must be a number > 0"),
        (lambda: cj.RetainOriginal(True), TypeError, r"RetainOriginal: fraction must be a number"),
        (lambda: cj.Weighted(True), TypeError, r"Weighted: real_weight must be a number"),
        (lambda: cj.Ridge(dim=2, spectrum="ab"), TypeError, r"Ridge: spectrum must be a number"),
        (lambda: cj.Ridge(dim=2, w_star="ab"), ValueError, r"Ridge: w_star must be"),
        (lambda: cj.Ridge(dim=2, cov=[[1e39, 0], [0, 1]]), ValueError, r"Ridge: cov must lie within"),
        (lambda: cj.GMM(2, 1, tol=True), TypeError, r"GMM: tol must be a number"),
        (lambda: cj.GLM(dim=2, w_star="ab"), TypeError, r"GLM: w_star must be numbers"),
        (lambda: cj.HuberLocation(mean="ab"), TypeError, r"HuberLocation: mean must be numbers"),
        (lambda: cj.BayesGaussian(1, 1.0, prior_mean="ab"), TypeError, r"BayesGaussian: prior_mean must be numbers"),
        (lambda: cj.InteractionGraph([[1, "a"], [0, 1]]), TypeError, r"InteractionGraph: weights must be numbers"),
        (lambda: cj.InteractionGraph.self_loops(2, real_fraction="x"), TypeError, r"real_fraction must be numbers"),
    ],
)
def test_constructors_name_the_parameter(make, exc, pattern):
    with pytest.raises(exc, match=pattern):
        make()


@pytest.mark.parametrize(
    "kwargs, exc, pattern",
    [
        (dict(thresholds={"variance": float("nan")}), ValueError, r"thresholds\['variance'\] must be finite"),
        (dict(thresholds={"variance": "a"}), TypeError, r"thresholds\['variance'\] must be numbers"),
        (dict(regime=cj.FreshMix(0.1), sweep={"real_fraction": ["a", 0.2]}), TypeError, r"sweep values for"),
    ],
)
def test_simulate_arguments_name_the_parameter(kwargs, exc, pattern):
    before = kernel.trace_counts()
    regime = kwargs.pop("regime", None)
    t = time.perf_counter()
    with pytest.raises(exc, match=pattern):
        cj.simulate(cj.Gaussian(), regime, **TINY, **kwargs)
    assert kernel.trace_counts() == before and time.perf_counter() - t < 5
