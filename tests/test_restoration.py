import cv2
import numpy as np
import pytest
import torch

from codec.restoration import RestorationConfig, RestorationNet, load_restoration, restore, save_restoration
from codec.restoration_train import FitConfig, Triple, sample, train_restoration
from pipeline.evaluation.image_codecs import OpenCVImageCodec
from pipeline.evaluation.restored import RestoredCodec


def _frame(h: int = 64, w: int = 96, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    coarse = rng.integers(0, 256, (h // 8, w // 8, 3), dtype=np.uint8)
    return cv2.resize(coarse, (w, h), interpolation=cv2.INTER_CUBIC)


def _jpeg(frame: np.ndarray, quality: int) -> np.ndarray:
    ok, buf = cv2.imencode(".jpg", frame, [cv2.IMWRITE_JPEG_QUALITY, quality])
    return cv2.imdecode(buf, cv2.IMREAD_COLOR)


def test_a_new_net_is_the_identity_at_any_size():
    net = RestorationNet(RestorationConfig(channels=8, depth=3, cond=1)).eval()
    for h, w in [(32, 48), (33, 47)]:  # odd sizes are padded and cropped back
        x = torch.rand(2, 3, h, w)
        with torch.no_grad():
            assert torch.equal(net(x, torch.full((2, 1, 1, 1), 0.3)), x)
    with pytest.raises(ValueError, match="conditioning"):
        net(torch.rand(1, 3, 8, 8))


def test_conditioning_maps_are_upsampled_to_the_frame():
    net = RestorationNet(RestorationConfig(channels=8, depth=3, cond=2))
    torch.nn.init.normal_(net.body[-1].weight, std=0.1)
    x = torch.rand(1, 3, 64, 64)
    per_block = torch.rand(1, 2, 4, 4)  # one value per 16x16 block
    out = net(x, per_block)
    assert out.shape == x.shape
    changed = per_block.clone()
    changed[..., 0, 0] += 1  # only the top-left block's conditioning
    diff = (net(x, changed) - out).abs().sum(1)[0]
    assert diff[:16, :16].sum() > 0 and diff[32:, 32:].sum() == 0


def test_weights_round_trip_and_damaged_files_are_named(tmp_path):
    net = RestorationNet(RestorationConfig(channels=8, depth=3, cond=1))
    torch.nn.init.normal_(net.body[-1].weight, std=0.1)
    save_restoration(net, tmp_path / "f", {"codec": "jpeg", "cond_scale": 0.01})
    loaded, meta = load_restoration(tmp_path / "f")
    frame = _frame()
    assert meta["codec"] == "jpeg"
    # Loaded nets run channels-last (faster convolutions, other float sums): the same layout gives the same bytes.
    original = net.eval().to(memory_format=torch.channels_last)
    np.testing.assert_array_equal(restore(loaded, frame, 0.5), restore(original, frame, 0.5))
    (tmp_path / "f.safetensors").write_bytes(b"garbage")
    with pytest.raises(ValueError, match="damaged"):
        load_restoration(tmp_path / "f")
    with pytest.raises(FileNotFoundError, match="missing"):
        load_restoration(tmp_path / "nothing")


def test_crops_keep_conditioning_blocks_aligned():
    frame = np.zeros((64, 64, 3), np.uint8)
    cond = np.arange(16, dtype=np.float32).reshape(1, 4, 4)  # 16-px blocks
    triples = [Triple(frame, frame, cond)]
    _, _, c = sample(triples, np.random.default_rng(0), 8, 32)
    assert c.shape == (8, 1, 2, 2)
    # Each crop's map is a contiguous 2x2 window of the block map.
    assert torch.all(c[:, 0, 0, 1] - c[:, 0, 0, 0] == 1) and torch.all(c[:, 0, 1, 0] - c[:, 0, 0, 0] == 4)


def test_training_learns_to_reduce_jpeg_error_and_resumes(tmp_path):
    frames = [_frame(96, 96, seed) for seed in range(4)]
    triples = [Triple(_jpeg(f, 10), f, np.full((1, 1, 1), 0.1, np.float32)) for f in frames]
    cfg = FitConfig(steps=150, batch=8, crop=48, lr=2e-3, lr_min=1e-4, max_minutes=None,
                                 checkpoint_every=50, seed=0, threads=1)
    config = RestorationConfig(channels=16, depth=4, cond=1)
    train_restoration(config, triples, FitConfig(**{**cfg.__dict__, "steps": 100}), tmp_path, {})
    last = train_restoration(config, triples, cfg, tmp_path, {"codec": "jpeg"})  # resumes at step 100
    net, meta = load_restoration(last)
    assert meta["step"] == 150 and meta["codec"] == "jpeg"
    before = np.mean([np.abs(t.decoded.astype(float) - t.original).mean() for t in triples])
    after = np.mean([np.abs(restore(net, t.decoded, 0.1).astype(float) - t.original).mean() for t in triples])
    assert after < 0.95 * before
    with pytest.raises(ValueError, match="another out_dir"):
        train_restoration(RestorationConfig(channels=8, depth=4, cond=1), triples, cfg, tmp_path, {})


def test_restored_codec_keeps_the_bits_and_checks_its_filter(tmp_path):
    jpeg = OpenCVImageCodec("jpeg", "jpeg", [20, 80])
    net = RestorationNet(RestorationConfig(channels=8, depth=3, cond=1))
    save_restoration(net, tmp_path / "identity", {"codec": "jpeg", "cond_scale": 0.01})
    torch.nn.init.constant_(net.body[-1].bias, 0.02)  # brightens every pixel by about 5 levels
    save_restoration(net, tmp_path / "bright", {"codec": "jpeg", "cond_scale": 0.01})
    frames = [_frame(seed=s) for s in range(2)]
    plain = jpeg.code(frames, 20)
    same = RestoredCodec("jpeg+rec", jpeg, tmp_path / "identity")
    assert same.points() == [20, 80] and same.intra and same.point_name == "quality"
    coded = same.code(frames, 20)
    assert coded.bits == plain.bits
    np.testing.assert_array_equal(coded.decoded[0], plain.decoded[0])
    brighter = RestoredCodec("jpeg+rec", jpeg, tmp_path / "bright").code(frames, 20)
    assert brighter.bits == plain.bits and brighter.decoded[0].astype(int).mean() > plain.decoded[0].mean() + 3
    save_restoration(net, tmp_path / "other", {"codec": "x264", "cond_scale": 0.02})
    with pytest.raises(ValueError, match="trained for 'x264'"):
        RestoredCodec("jpeg+rec", jpeg, tmp_path / "other")


def test_comcnn_starts_as_an_area_downscale_and_the_system_codes_real_bits(tmp_path):
    from codec.comcnn import ComCNNConfig, CompactSystem, save_system
    from pipeline.evaluation.compact import CompactCodec

    system = CompactSystem(ComCNNConfig(channels=8, depth=3, rec=RestorationConfig(channels=8, depth=3, cond=1)))
    x = torch.rand(1, 3, 32, 48) * 0.9 + 0.05
    with torch.no_grad():
        assert torch.allclose(system.compact(x), torch.nn.functional.avg_pool2d(x, 2), atol=1e-5)
    save_system(system, tmp_path / "cc", {"codec": "jpeg", "cond_scale": 0.01})
    jpeg = OpenCVImageCodec("jpeg", "jpeg", [20, 80])
    frames = [_frame(63, 95, seed=s) for s in range(2)]  # odd sizes
    compact = CompactCodec("comcnn_jpeg", jpeg, tmp_path / "cc")
    coded = compact.code(frames, 80)
    coded.check(frames, "comcnn_jpeg", 80)
    half = jpeg.code([cv2.resize(f, (48, 32), interpolation=cv2.INTER_AREA) for f in frames], 80)
    assert abs(coded.bits[0] - half.bits[0]) < 0.1 * half.bits[0]  # about the bits of the half-size frame
    save_system(system, tmp_path / "other", {"codec": "x264", "cond_scale": 0.02})
    with pytest.raises(ValueError, match="trained for 'x264'"):
        CompactCodec("comcnn_jpeg", jpeg, tmp_path / "other")


def test_comcnn_training_beats_downscale_codec_upscale_at_the_same_quality(tmp_path):
    from codec.comcnn import ComCNNConfig, load_system
    from codec.comcnn_train import train_comcnn
    from pipeline.commands.train_filter import jpeg_roundtrip

    images = [_frame(96, 96, seed) for seed in range(4)]
    cfg = FitConfig(steps=120, batch=8, crop=48, lr=2e-3, lr_min=1e-4, max_minutes=None,
                                 checkpoint_every=60, seed=0, threads=1)
    config = ComCNNConfig(channels=8, depth=3, rec=RestorationConfig(channels=16, depth=4, cond=1))
    last = train_comcnn(config, images, jpeg_roundtrip, [20, 40], 0.01, cfg, tmp_path, {"codec": "jpeg"})
    assert load_system(last)[1]["step"] == 120
    rows = [line.split(",") for line in (tmp_path / "log.csv").read_text().splitlines()[1:]]
    late = rows[-30:]
    assert np.mean([float(r[1]) for r in late]) < 0.97 * np.mean([float(r[2]) for r in late])


@pytest.mark.slow
def test_train_filter_command_makes_data_once_trains_and_exports(tmp_path):
    import json
    import subprocess
    import sys

    def run(*overrides: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "pipeline", "train_filter", "restore=x264",
                               "restore.sources=[data/sample/leftImg8bit_sequence/train/synthtown]", "restore.frames=6",
                               f"restore.data={tmp_path / 'data'}", f"restore.out_dir={tmp_path / 'train'}",
                               "restore.train.checkpoint_every=10", f"hydra.run.dir={tmp_path / 'run'}", *overrides],
                              capture_output=True, text=True, timeout=300)

    data_only = run("restore.points=[24,40]", "restore.train.max_minutes=0")
    assert data_only.returncode == 0, data_only.stderr[-2000:]
    assert (tmp_path / "data" / "done.json").is_file() and not (tmp_path / "train").exists()
    first = run("restore.points=[24,40]", "restore.train.steps=20", f"restore.export={tmp_path / 'exp'}")
    assert first.returncode == 0, first.stderr[-2000:]
    assert len(list((tmp_path / "data").glob("*.npz"))) == 2 * 2  # frames 0 and 3 at two points
    net, meta = load_restoration(tmp_path / "exp")
    assert meta["codec"] == "x264" and meta["step"] == 20 and json.loads(json.dumps(meta["data"]))["points"] == [24, 40]
    again = run("restore.points=[24,40]", "restore.train.steps=30")  # data reused, training resumed
    assert again.returncode == 0 and load_restoration(tmp_path / "train" / "last")[1]["step"] == 30
    other = run("restore.points=[30]", "restore.train.steps=40")
    assert other.returncode != 0 and "other settings" in other.stderr


def test_training_can_start_from_given_weights(tmp_path):
    frames = [_frame(96, 96, seed) for seed in range(2)]
    triples = [Triple(_jpeg(f, 20), f, np.full((1, 1, 1), 0.2, np.float32)) for f in frames]
    config = RestorationConfig(channels=8, depth=3, cond=1)
    start_net = RestorationNet(config)
    torch.nn.init.constant_(start_net.body[-1].bias, 0.01)
    cfg = FitConfig(steps=1, batch=2, crop=48, lr=1e-9, lr_min=1e-9, max_minutes=None,
                                 checkpoint_every=1, seed=0, threads=1)
    net, _ = load_restoration(train_restoration(config, triples, cfg, tmp_path, {}, init=start_net.state_dict()))
    assert torch.allclose(net.body[-1].bias, torch.full_like(net.body[-1].bias, 0.01), atol=1e-6)
