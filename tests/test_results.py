"""Result: summaries, probabilities, steady state, paired differences, storage."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr
from conftest import SEED

import collapse_jax as cj


@pytest.fixture(scope="module")
def res():
    return cj.simulate(
        cj.Gaussian(), cj.Replace(), n=10, generations=15, chains=3000, seed=SEED, progress=False, keep="chains"
    )


def test_shapes_and_summary_columns(res):
    assert res.metrics["variance"].shape == (3000, 16)
    assert res.nonfinite.shape == (3000, 16)
    assert res.events["collapse"].shape == (3000,)
    table = res.summary()
    cols = {
        "metric",
        "generation",
        "mean",
        "se",
        "sd",
        "q05",
        "q25",
        "q50",
        "q75",
        "q95",
        "n_finite",
        "n_nonfinite",
        "heavy_tail",
        "quantile_chains",
    }
    assert cols <= set(table.columns)
    assert len(table) == 16 * len(res.metrics)
    row = table[(table.metric == "sd") & (table.generation == 3)].iloc[0]
    x = res.metrics["sd"][:, 3].astype(np.float64)
    assert row["mean"] == pytest.approx(x.mean(), rel=1e-9)
    assert row["se"] == pytest.approx(x.std(ddof=1) / np.sqrt(len(x)), rel=1e-9)
    assert row["q50"] == pytest.approx(np.median(x), rel=1e-6)


def test_heavy_tail_flag():
    # E[variance] of a long unbiased chain at small n is carried by rare chains
    r = cj.simulate(
        cj.Gaussian(estimator="unbiased", sampler="exact"),
        cj.Replace(),
        n=4,
        generations=60,
        chains=4000,
        seed=SEED,
        progress=False,
        metrics=["variance", "log_variance"],
    )
    t = r.summary().set_index(["metric", "generation"])
    assert t.loc[("variance", 60), "heavy_tail"]
    assert not t.loc[("log_variance", 60), "heavy_tail"]
    assert not t.loc[("variance", 0), "heavy_tail"]


def test_heavy_tail_flag_survives_underflow():
    # values near 1e-100: m2 * m2 and m4 underflow in float64; the flag must not
    # divide 0 by 0 (a warning and a silent False) but report the unassessable case
    from collapse_jax.metrics import heavy_tail

    x = np.array([1e-100, 3e-100, 2e-100, 9e-100, 1e-101])
    m2 = float(np.sum((x - x.mean()) ** 2))
    m4 = float(np.sum((x - x.mean()) ** 4))
    assert m2 > 0 and m4 == 0.0
    with np.errstate(all="raise"):
        assert heavy_tail(x.size, m2, m4)
    y = np.array([1.0, 1.1, 0.9, 1.05, 0.95] * 40)
    assert not heavy_tail(y.size, float(np.sum((y - 1) ** 2)), float(np.sum((y - 1) ** 4)))


def test_prob_below_chains_and_summary_agree(res):
    p = res.prob_below("sd", 0.5)
    assert np.allclose(p["p"], np.mean(res.metrics["sd"] < 0.5, axis=0))
    s = cj.simulate(
        cj.Gaussian(),
        cj.Replace(),
        n=10,
        generations=15,
        chains=3000,
        seed=SEED,
        progress=False,
        keep="summary",
        keep_chains=10,
        thresholds={"sd": [0.5, 0.8]},
    )
    ps = s.prob_below("sd", 0.5)
    np.testing.assert_allclose(ps["p"], p["p"], atol=1e-12)
    with pytest.raises(ValueError, match="thresholds"):
        s.prob_below("sd", 0.3)


def test_steady_state_and_quantile(res):
    ss = res.steady_state("mean_sq_error", burn_in=5)
    avg = res.metrics["mean_sq_error"][:, 5:].mean(axis=1)
    assert ss["mean"] == pytest.approx(avg.mean(), rel=1e-6)
    assert ss["se"] == pytest.approx(avg.std(ddof=1) / np.sqrt(len(avg)), rel=1e-6)
    est, lo, hi = res.quantile("log_variance", 0.5)
    assert np.all(lo <= est) and np.all(est <= hi)
    with pytest.raises(ValueError, match="burn_in"):
        res.steady_state("sd", burn_in=99)


def test_paired_difference_uses_common_random_numbers():
    kw = dict(n=10, generations=10, chains=4000, seed=SEED, progress=False, metrics=["mean_sq_error"])
    a = cj.simulate(cj.Gaussian(learn_cov=False), cj.FreshMix(0.2), **kw)
    b = cj.simulate(cj.Gaussian(learn_cov=False), cj.FreshMix(0.3), **kw)
    d = a.paired_difference(b, "mean_sq_error").set_index("generation")
    assert d.loc[0, "mean"] == 0.0 and d.loc[0, "se"] == 0.0  # same original sample
    ind = np.sqrt(a.summary("mean_sq_error")["se"].to_numpy() ** 2 + b.summary("mean_sq_error")["se"].to_numpy() ** 2)
    assert np.all(d["se"].to_numpy()[1:] < ind[1:])  # pairing removes shared noise


@pytest.mark.parametrize("keep", ["chains", "summary"])
def test_save_load_roundtrip(tmp_path, keep):
    r = cj.simulate(
        cj.Gaussian(),
        cj.FreshMix(0.5),
        n=10,
        generations=6,
        chains=200,
        seed=SEED,
        progress=False,
        keep=keep,
        keep_chains=20,
        thresholds={"sd": 0.9},
        sweep={"real_fraction": [0.2, 0.6]},
    )
    path = r.save(tmp_path / "run")
    assert path.suffix == ".nc" and path.with_suffix(".csv").exists()
    ds = xr.open_dataset(path)
    assert "config" in ds.attrs and ds.attrs["seed"] == SEED and "jax" in ds.attrs["info"]
    ds.close()
    back = cj.load(path)
    assert back.config == r.config
    for k in r.metrics:
        np.testing.assert_array_equal(back.metrics[k], r.metrics[k])
    np.testing.assert_array_equal(back.events["collapse"], r.events["collapse"])
    t1, t2 = r.summary(), back.summary()
    np.testing.assert_allclose(t1["mean"].to_numpy(), t2["mean"].to_numpy())
    np.testing.assert_allclose(r.prob_below("sd", 0.9)["p"], back.prob_below("sd", 0.9)["p"])
    assert not list(tmp_path.glob("*.tmp"))


def test_atomic_write_leaves_nothing_on_failure(tmp_path):
    from collapse_jax.results import atomic_write

    target = tmp_path / "x.nc"

    def boom(tmp):
        with open(tmp, "w") as f:
            f.write("partial")
        raise RuntimeError("interrupted")

    with pytest.raises(RuntimeError):
        atomic_write(target, boom)
    assert not target.exists() and not list(tmp_path.iterdir())


def test_auto_switches_to_summary_with_warning():
    with pytest.warns(UserWarning, match="keeping summaries"):
        r = cj.simulate(
            cj.Gaussian(),
            cj.Replace(),
            n=10,
            generations=50,
            chains=2000,
            seed=SEED,
            progress=False,
            max_memory="1MB",
            keep_chains=30,
        )
    assert r.is_summary and r.metrics["sd"].shape == (30, 51)
    assert r.summary("sd")["n_finite"].iloc[-1] == 2000


# --------------------------------------------------------------------------- the file and xarray idioms
@pytest.fixture(scope="module")
def swept(tmp_path_factory):
    kw = dict(n=10, generations=3, chains=40, seed=5, progress=False, thresholds={"variance": [0.5]})
    sweep = {"real_fraction": [0.1, 0.3], "synthesis.temperature": [0.9, 1.1]}
    syn = cj.Synthesis(temperature=1.0)
    full = cj.simulate(cj.Gaussian(), cj.FreshMix(0.2), synthesis=syn, keep="chains", sweep=sweep, **kw)
    summ = cj.simulate(cj.Gaussian(), cj.FreshMix(0.2), synthesis=syn, keep="summary", keep_chains=6, sweep=sweep, **kw)
    path = summ.save(tmp_path_factory.mktemp("swept") / "s.nc")
    return full, summ, path


def test_file_is_idiomatic_netcdf(swept):
    import xarray as xr

    full, summ, path = swept
    with xr.open_dataset(path) as ds:
        for key in ("Conventions", "title", "history", "source", "references"):
            assert ds.attrs[key], key
        assert ds.attrs["Conventions"].startswith("CF-")
        for name, var in ds.data_vars.items():
            assert var.attrs.get("long_name") and var.attrs.get("units"), name
        # sweep values are index coordinates
        one = ds.sel(real_fraction=0.3, temperature=0.9)["variance"]
        assert one.dims == ("kept_chain", "generation")
        np.testing.assert_array_equal(one.values, summ.metrics["variance"][2])  # grid order: (0.3, 0.9) is point 2
        # one row per kept chain, generation and sweep point: no cartesian product with other groups
        assert ds.to_dataframe().shape[0] == 2 * 2 * 6 * 4
    with xr.open_datatree(path) as tree:
        events = tree["events"].to_dataset()
        assert events.sizes["chain"] == 40 and list(events["chain"].values) == list(range(40))
        # the fill value -1 (never happened) reads as missing
        never = summ.events["collapse"].reshape(2, 2, 40) < 0
        assert np.isnan(events["collapse"].values[never]).all()
        stats = tree["summary"]["metrics"].to_dataset()
        np.testing.assert_allclose(stats["variance_se"].values.reshape(4, 4), summ.se("variance"))
        assert stats["variance"].attrs["long_name"].startswith("mean over chains")


def test_accessors_agree_with_the_summary_table(swept):
    full, summ, _ = swept
    table = full.summary("variance")
    np.testing.assert_allclose(full.mean("variance").reshape(-1), table["mean"].to_numpy(), rtol=1e-12)
    np.testing.assert_allclose(full.se("variance").reshape(-1), table["se"].to_numpy(), rtol=1e-12)
    np.testing.assert_allclose(full.quantiles("variance", [0.5])[0].reshape(-1), table["q50"].to_numpy(), rtol=1e-6)
    # summary mode streams every chain: the same means as keeping them all
    np.testing.assert_allclose(summ.mean("variance"), full.mean("variance"), rtol=1e-6)
    # steady state: the same mean over every chain; in summary mode an upper bound on the se
    exact, bound = full.steady_state("variance", 1), summ.steady_state("variance", 1)
    np.testing.assert_allclose(bound["mean"], exact["mean"], rtol=1e-6)
    assert np.all(bound["se"] >= exact["se"]) and bound["se_kind"] == "upper bound"
    assert np.all(bound["chains"] == 40)


def test_tidy_dataframe(swept):
    full, summ, _ = swept
    df = full.to_dataframe()
    assert list(df.columns) == ["real_fraction", "temperature", "chain", "generation", "metric", "value"]
    assert len(df) == len(full.metrics) * 4 * 40 * 4
    pick = df[(df.metric == "variance") & (df.real_fraction == 0.1) & (df.temperature == 1.1) & (df.chain == 7)]
    np.testing.assert_array_equal(pick.sort_values("generation")["value"].to_numpy(), full.metrics["variance"][1, 7])
    wide = full.to_dataframe(long=False)
    assert len(wide) == 4 * 40 * 4 and "variance" in wide and "chain" in wide
    assert len(summ.to_dataframe(metrics="variance")) == 4 * 6 * 4  # the kept chains


def test_format_1_files_still_load():
    from pathlib import Path

    data = Path(__file__).parent / "data"
    old = cj.load(data / "result_format1.nc")
    expected = np.load(data / "result_format1_expected.npz")
    np.testing.assert_array_equal(old.metrics["variance"], expected["kept"])
    np.testing.assert_array_equal(old.events["collapse"], expected["collapse"])
    np.testing.assert_allclose(old.mean("variance"), expected["variance_mean"], rtol=1e-12)
    assert old.n_sweep == 2


def test_summary_with_no_kept_chains():
    res = cj.simulate(cj.Gaussian(), n=10, generations=3, chains=20, keep="summary", keep_chains=0, progress=False)
    table = res.summary("variance")
    assert len(table) == 4 and np.isfinite(table["mean"]).all() and (table["quantile_chains"] == 0).all()
    assert table["q50"].isna().all()  # no kept chains, no quantiles: NaN, not an error
    np.testing.assert_allclose(res.mean("variance"), table["mean"].to_numpy())
