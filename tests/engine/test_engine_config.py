import json

import pytest

from worker.engine import DEFAULT_ACTIVATIONS, DEFAULT_LRS, ConfigError, TrainConfig, valid_batch_sizes

pytestmark = pytest.mark.unit

SIZES_50000 = "50, 80, 100, 125, 200, 250, 400, 500, 625, 1000"


def test_valid_batch_sizes():
    assert valid_batch_sizes(50_000) == [50, 80, 100, 125, 200, 250, 400, 500, 625, 1000]
    assert valid_batch_sizes(60_000)[:4] == [50, 60, 75, 80]
    assert valid_batch_sizes(49) == []


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"batch_size": 123}, f"batch size 123 does not divide the 50,000 training images (every batch is full); batch sizes in "
                              f"50..1000 that divide 50,000: {SIZES_50000}, or take a training-set size that 123 divides"),
        ({"batch_size": 20}, f"batch size 20 is outside 50..1000; batch sizes in 50..1000 that divide 50,000: {SIZES_50000}"),
        ({"batch_size": 2000}, f"batch size 2000 is outside 50..1000; batch sizes in 50..1000 that divide 50,000: {SIZES_50000}"),
    ],
)
def test_validate_batch_size_messages(kwargs, message):
    cfg = TrainConfig(**kwargs)
    with pytest.raises(ConfigError) as e:
        cfg.validate(50_000)
    assert str(e.value) == message


def test_validate_reports_no_valid_sizes():
    with pytest.raises(ConfigError, match="batch sizes in 50..1000 that divide 49: none, or take"):
        TrainConfig(batch_size=100).validate(49)


def test_validate_accepts_and_returns_self():
    cfg = TrainConfig()
    assert cfg.validate(50_000) is cfg
    assert cfg.validate(60_000) is cfg


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"lr": 0.0}, "lr must be a positive finite number, got 0.0"),
        ({"lr": -0.1}, "lr must be a positive finite number, got -0.1"),
        ({"lr": float("nan")}, "lr must be a positive finite number, got nan"),
        ({"lr": float("inf")}, "lr must be a positive finite number, got inf"),
        ({"lr": "0.1"}, "lr must be a number, got '0.1'"),
        ({"activation": "sigmoid"}, "unknown activation 'sigmoid'; expected one of: relu, tanh"),
        ({"init": "xavier"}, "unknown init 'xavier'; expected one of: glorot, he"),
        ({"hidden": ()}, "hidden must list at least one layer width, got []"),
        ({"hidden": (512, 0)}, "hidden layer widths must be positive integers, got [512, 0]"),
        ({"hidden": (512, 2.5)}, "hidden layer widths must be positive integers, got [512, 2.5]"),
        ({"hidden": 512}, "hidden must be a list of integers, got 512"),
        ({"epochs": 0}, "epochs must be an integer in 1..10000, got 0"),
        ({"epochs": 10001}, "epochs must be an integer in 1..10000, got 10001"),
        (
            {"epochs": 30, "decay_epochs": (20, 40)},
            "decay epochs must be strictly increasing integers in 1..29 (epochs - 1), got [20, 40]",
        ),
        ({"decay_epochs": (40, 20)}, "decay epochs must be strictly increasing integers in 1..49 (epochs - 1), got [40, 20]"),
        ({"decay_epochs": (20, 20)}, "decay epochs must be strictly increasing integers in 1..49 (epochs - 1), got [20, 20]"),
        ({"decay_epochs": (0,)}, "decay epochs must be strictly increasing integers in 1..49 (epochs - 1), got [0]"),
        ({"decay_epochs": (50,)}, "decay epochs must be strictly increasing integers in 1..49 (epochs - 1), got [50]"),
        ({"momentum": 1.0}, "momentum must be in [0, 1), got 1.0"),
        ({"momentum": -0.1}, "momentum must be in [0, 1), got -0.1"),
        ({"l2": -1e-4}, "l2 must be a finite number >= 0, got -0.0001"),
        ({"l2": float("inf")}, "l2 must be a finite number >= 0, got inf"),
        ({"dropout": 1.0}, "dropout must be in [0, 1), got 1.0"),
        ({"dropout": -0.5}, "dropout must be in [0, 1), got -0.5"),
        ({"threads": 0}, "threads must be an integer >= 1 (or unset), got 0"),
        ({"threads": 1.5}, "threads must be an integer >= 1 (or unset), got 1.5"),
        ({"seed": -1}, "seed must be a non-negative integer, got -1"),
        ({"batch_size": 0}, "batch size must be a positive integer, got 0"),
        ({"batch_size": True}, "batch size must be a positive integer, got True"),
    ],
)
def test_bad_parameters_raise_specific_messages(kwargs, message):
    with pytest.raises(ConfigError) as e:
        TrainConfig(**kwargs)
    assert str(e.value) == message
    assert isinstance(e.value, ValueError)


def test_json_round_trip():
    cfg = TrainConfig(hidden=(64, 32), activation="tanh", lr=0.05, threads=1, decay_epochs=(5,), epochs=10)
    d = json.loads(json.dumps(cfg.to_dict()))
    assert d["hidden"] == [64, 32] and d["decay_epochs"] == [5]
    assert TrainConfig.from_dict(d) == cfg


def test_from_dict_normalises_and_rejects_unknown_keys():
    assert TrainConfig.from_dict({"lr": 1, "hidden": [8]}).lr == 1.0
    with pytest.raises(ConfigError) as e:
        TrainConfig.from_dict({"lr": 0.1, "learning_rate": 0.1, "layers": [3]})
    assert str(e.value).startswith("unknown config keys: layers, learning_rate; expected keys: activation, batch_size,")


def test_config_is_frozen():
    with pytest.raises(AttributeError):
        TrainConfig().lr = 1.0


def test_lr_halves_after_each_decay_epoch():
    cfg = TrainConfig(lr=0.08, epochs=50, decay_epochs=(20, 40))
    lrs = [cfg.lr_at(e) for e in range(1, 51)]
    assert lrs[:20] == [0.08] * 20
    assert lrs[20:40] == [0.04] * 20
    assert lrs[40:] == [0.02] * 10
    assert TrainConfig(lr=0.1, epochs=3, decay_epochs=()).lr_at(3) == 0.1


def test_defaults_are_the_documented_sweep():
    cfg = TrainConfig()
    assert cfg.lr in DEFAULT_LRS and set(DEFAULT_ACTIVATIONS) == {"tanh", "relu"}
    assert (cfg.epochs, cfg.decay_epochs, cfg.batch_size) == (50, (20, 40), 100)
    for name in ("hidden", "momentum", "dropout", "l2", "init", "batch_size"):
        assert name in TrainConfig.__doc__
