"""The web page in a real headless browser (Debian's chromium, driven by selenium through the
system chromedriver — no browser download), on the shipped models' files: each fixed-batch
TFLite file runs in LiteRT.js and gives what Python's LiteRT gives on the same file and inputs;
bad inputs are refused by the page with one clear message. Under CI=true this test must run: a
missing browser fails it. (The exporter's writing of such files: tests/test_export.py.)
"""

import os
import shutil

import numpy as np
import pytest
from conftest import REPO

from zoo.apps import web
from zoo.export import tflite, web_files
from zoo.export.folder import ExportFolder

CHROMIUM, DRIVER = shutil.which("chromium"), shutil.which("chromedriver")
MODULES = os.path.join(web.WEB_DIR, "node_modules", "@litertjs", "core")
MISSING = [what for what, ok in (("chromium", CHROMIUM), ("chromedriver", DRIVER), ("web/node_modules (npm ci)",
                                                                                   os.path.isdir(MODULES))) if not ok]
if MISSING:
    if os.environ.get("CI") == "true":
        pytest.fail(f"the browser test must run under CI: missing {', '.join(MISSING)} (.ci/run installs them)",
                    pytrace=False)
    pytest.skip(f"no {', '.join(MISSING)} here (.ci/run installs them)", allow_module_level=True)

SHIPPED = os.path.join(REPO, "exported")

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("web")]  # its module fixture, built once (conftest.py)


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    """The page, served by `zoo web exported`, on the shipped models' files."""
    server, url = web.serve_in_background(SHIPPED)
    browser = web.headless_page(url, tmp_path_factory.mktemp("chromium"), CHROMIUM, DRIVER)
    yield browser, SHIPPED
    browser.quit()
    server.shutdown()


def fixed_inputs(folder, model, signature, batch, seed=0):
    """Inputs by the card's roles, as the page builds them (labels: classes in turn)."""
    rng = np.random.default_rng(seed)
    labels = (np.arange(batch) % 10).astype(np.int32)
    return {i.name: i.draw(rng, batch, labels if i.role == "labels" else None)
            for i in ExportFolder(os.path.join(folder, model)).tflite_inputs(signature)}


def page_files():
    """(model, signature, variant, batch) of every shipped web file and each of its signatures."""
    return [(model, signature, entry["variant"], entry["batch"]) for model in ("vae", "ae", "dae", "cgan", "diffusion")
            for entry in ExportFolder(os.path.join(SHIPPED, model)).web_files().values()
            for signature in entry["signatures"]]


@pytest.mark.parametrize("model, signature, variant, batch", page_files() if os.path.isdir(SHIPPED) else [])
def test_the_browser_computes_what_python_litert_computes(site, model, signature, variant, batch):
    browser, folder = site
    inputs = fixed_inputs(folder, model, signature, batch)
    result = web.run_in_page(browser, model, variant, batch, signature, inputs)
    assert "error" not in result, result.get("error")
    web_file = os.path.join(folder, model, "web", tflite.file_name(model, variant, batch))
    expected = tflite.File(web_file)(signature, **inputs)
    # the exporter's rule for a copy of a file: the model's parity tolerance (float32, float16), for
    # dynamic-range int8 twice the variant's own distance from float32 (it quantises as it runs),
    # that distance measured on these inputs where it is larger than on the card's: a sampler's
    # loop can carry int8 rounding into a few pixels (DPM-Solver++'s int8 file: 0.75 from float32
    # here, 0.07 on the exporter's inputs; the browser's 0.63)
    tolerance = web_files.allowed_difference(ExportFolder(os.path.join(folder, model)).card["tflite"][
        tflite.file_name(model, variant)], 1e-3 if model == "diffusion" else 1e-4, [signature])
    if variant == "int8_dynamic":
        float32 = tflite.File(os.path.join(folder, model, tflite.file_name(model)))(signature, **inputs)
        tolerance = max(tolerance, *(2 * float(np.max(np.abs(expected[k] - float32[k]))) for k in expected))
    for name, value in expected.items():
        got = np.asarray(result["outputs"][name]["data"], np.float64).reshape(value.shape)
        assert np.max(np.abs(got - value)) <= tolerance * max(1.0, np.max(np.abs(value))), (
            model, signature, name, np.max(np.abs(got - value)))
        # ... and nearly every pixel the same: a copy that computed another function would not be
        # (measured: at most 0.0032 on average, the diffusion samplers' int8 files)
        assert np.mean(np.abs(got - value)) <= 0.01 * max(1.0, np.max(np.abs(value))), (
            model, signature, name, np.mean(np.abs(got - value)))
        assert result["outputs"][name]["shape"] == list(value.shape)
    assert result["ms"] > 0


def test_the_page_refuses_bad_inputs_in_one_line(site):
    browser, folder = site
    good = fixed_inputs(folder, "diffusion", "generate", 1)
    cases = {
        "label below the classes": ({**good, "labels": np.array([-1], np.int32)}, "must be in [0, 9], got -1"),
        "label above": ({**good, "labels": np.array([10], np.int32)}, "must be in [0, 9], got 10"),
        "NaN noise": ({**good, "noise": np.full_like(good["noise"], np.nan)}, "input noise contains NaN or Inf"),
        "wrong shape": ({**good, "noise": good["noise"][:, :14]}, "input noise must have shape [1,28,28,1]"),
    }
    variant = browser.execute_script("return window.zoo.catalog().diffusion.default_variant")
    for case, (inputs, message) in cases.items():
        result = web.run_in_page(browser, "diffusion", variant, 1, "generate", inputs)
        assert message in result.get("error", ""), (case, result)


def test_the_page_draws_a_digit_when_clicked(site, tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.wait import WebDriverWait

    browser, _ = site
    section = browser.find_element(By.ID, "model-cgan")
    section.find_elements(By.TAG_NAME, "button")[3].click()  # the digit 3
    WebDriverWait(browser, 120).until(lambda b: "ms on this device" in section.find_element(
        By.CLASS_NAME, "status").text)
    assert len(section.find_elements(By.TAG_NAME, "canvas")) == 1
    browser.save_screenshot(str(tmp_path / "page.png"))
    assert (tmp_path / "page.png").stat().st_size > 1000


def test_the_denoiser_panel_says_what_each_image_is_and_no_menu_offers_one_choice(site):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.wait import WebDriverWait

    browser, _ = site
    section = browser.find_element(By.ID, "model-dae-denoiser")
    section.find_element(By.TAG_NAME, "button").click()
    WebDriverWait(browser, 120).until(lambda b: "ms on this device" in section.find_element(
        By.CLASS_NAME, "status").text)
    captions = [c.text for c in section.find_elements(By.TAG_NAME, "figcaption")]
    assert captions == ["noisy", "denoised", "original"], section.get_attribute("innerHTML")[:3000]
    for model in ("vae", "ae", "dae", "cgan", "diffusion"):
        menus = browser.find_element(By.ID, f"model-{model}").find_elements(By.CSS_SELECTOR, "select.variant")
        options = [len(m.find_elements(By.TAG_NAME, "option")) for m in menus]
        assert all(n > 1 for n in options), (model, options)
