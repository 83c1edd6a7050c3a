"""The capacity estimate from measured costs: the cores' bound and the serving thread's."""

from __future__ import annotations

from agent.reporting.capacity import CameraCost, estimate


def cost(camera: str, decode: float, rate: float = 5.0, size: tuple[int, int] = (640, 480)) -> CameraCost:
    return CameraCost(camera, size[0], size[1], 15.0, decode, rate)


def test_cpu_bound_for_the_costliest_camera() -> None:
    cap = estimate([cost("door", 0.03), cost("yard", 0.09, size=(1280, 720))], infer_cpu_s=0.012, serve_s=0.008,
                   n_cores=2)
    assert cap is not None and cap.camera == "yard" and cap.bound == "cpu"
    assert cap.cameras == int(2 * 0.9 / (0.09 + 5 * 0.012))  # 12
    assert cap.stream == "1280x720@15fps" and cap.summary.startswith("about 12 cameras of 1280x720@15fps")


def test_serving_thread_bound_when_inference_is_off_the_cpu() -> None:
    """An accelerator: little CPU per answer, but one call at a time at 20 ms each."""
    cap = estimate([cost("door", 0.02)], infer_cpu_s=0.001, serve_s=0.020, n_cores=8)
    assert cap is not None and cap.bound == "serving" and cap.cameras == 10


def test_nothing_until_a_camera_answered() -> None:
    assert estimate([cost("door", 0.02, rate=0.0)], 0.01, 0.01, 2) is None
    assert estimate([cost("door", 0.02)], None, None, 2) is None


def test_other_processes_cpu_is_left_to_them() -> None:
    alone = estimate([cost("door", 0.05)], infer_cpu_s=0.01, serve_s=0.001, n_cores=2)
    shared = estimate([cost("door", 0.05)], infer_cpu_s=0.01, serve_s=0.001, n_cores=2, other_cores=0.8)
    assert alone is not None and shared is not None
    assert (alone.cameras, shared.cameras) == (18, 10) and shared.other_cpu_pct == 80.0
