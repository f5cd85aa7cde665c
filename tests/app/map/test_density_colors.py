import base64
import io

import numpy as np
import pytest
from PIL import Image

from app.map import density_colors as dc


def _gaussian_grid(lat0: float, lon0: float, height: int = 180, width: int = 360) -> np.ndarray:
    lat = 90.0 - (np.arange(height) + 0.5) * 180.0 / height  # cell centres, row 0 = north
    lon = -180.0 + (np.arange(width) + 0.5) * 360.0 / width
    la, lo = np.meshgrid(lat, lon, indexing="ij")
    return np.exp(-((la - lat0) ** 2 + (lo - lon0) ** 2) / (2 * 3.0**2))


def _lightness(rgb: np.ndarray) -> np.ndarray:
    """CIE L* (0..100, perceptual lightness) of sRGB uint8 colours."""
    c = rgb.astype(float) / 255.0
    linear = np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)
    y = linear @ np.array([0.2126, 0.7152, 0.0722])
    return np.where(y > 216 / 24389, 116 * np.cbrt(y) - 16, y * 24389 / 27)


def test_transparent_where_negligible_opaque_at_the_peak():
    grid = _gaussian_grid(10.0, 20.0)
    rgba = dc.density_rgba(grid, decades=3.0)
    assert rgba.shape == (180, 360, 4) and rgba.dtype == np.uint8
    negligible = grid < grid.max() * 1e-3
    assert np.all(rgba[negligible, 3] == 0)
    assert np.all(rgba[~negligible, 3] > 0)
    peak = np.unravel_index(np.argmax(grid), grid.shape)
    assert rgba[peak][3] == 255


def test_colour_and_opacity_rise_with_density():
    grid = np.logspace(-2.9, 0, 200)[None, :]  # one row, rising density
    for log_scale in (True, False):
        rgba = dc.density_rgba(grid, log_scale=log_scale, decades=3.0)[0]
        lightness = _lightness(rgba[:, :3])
        assert np.all(np.diff(lightness) >= -0.2)  # monotone up to 8-bit rounding
        assert lightness[-1] - lightness[0] > 60
        assert np.all(np.diff(rgba[:, 3].astype(int)) >= 0)


def test_ramp_is_perceptual_monotone_in_lightness():
    lightness = _lightness(dc.ramp_rgb(np.linspace(0, 1, 256)))
    assert np.all(np.diff(lightness) >= -0.2)
    steps = np.diff(_lightness(dc.ramp_rgb(np.linspace(0, 1, 9))))
    assert steps.min() > 0.6 * steps.mean()  # lightness rises evenly (inferno), not in jumps


def test_legend_describes_the_scale():
    grid = np.zeros((180, 360))
    grid[40, 100] = 20.0  # per steradian
    spec = dc.legend(grid, decades=3.0)
    assert spec["title"] == "Probability density (log scale)"
    assert [t for _, t in spec["ticks"]] == ["peak", "peak / 10", "peak / 100", "peak / 1,000"]
    assert [round(at, 3) for at, _ in spec["ticks"]] == [1.0, 0.667, 0.333, 0.0]
    assert len(spec["stops"]) == 9 and spec["stops"][-1] == "#{:02x}{:02x}{:02x}".format(
        *dc.RAMP_COLORS[-1]
    )
    # 20 per steradian x (100 km / 6371 km)^2 = 0.49 % of the probability in 100 km by 100 km
    # 20 per steradian is 251 times the uniform 1 / (4 pi)
    assert spec["note"] == (
        "Peak: 0.49% of the probability in 100 km by 100 km (251\u00d7 a uniform guess)"
    )
    grid[40, 100] = 2000.0
    assert dc.legend(grid)["note"].startswith("Peak: 49% of the probability in 100 km by 100 km")
    grid[40, 100] = 0.2
    assert dc.legend(grid)["note"].endswith("(only 2.5\u00d7 a uniform guess)")
    assert dc.legend(np.zeros((2, 4)))["note"] == ""
    linear = dc.legend(grid, log_scale=False)
    assert linear["ticks"][0] == [0.0, "0% of peak"] and linear["ticks"][-1] == [1.0, "peak"]


def test_log_scale_spreads_the_low_densities():
    grid = np.array([[1e-2, 1.0]])
    log_level = dc.density_levels(grid, log_scale=True, decades=3.0)[0, 0]
    lin_level = dc.density_levels(grid, log_scale=False, decades=3.0)[0, 0]
    assert log_level == pytest.approx(1.0 / 3.0)  # two decades below the top of three
    assert lin_level == pytest.approx(0.01)


def test_zero_nan_and_bad_shapes():
    assert np.all(dc.density_rgba(np.zeros((4, 8)))[..., 3] == 0)
    grid = np.ones((2, 2))
    grid[0, 0] = np.nan
    rgba = dc.density_rgba(grid)
    assert rgba[0, 0, 3] == 0 and rgba[1, 1, 3] == 255
    with pytest.raises(ValueError, match="2-D"):
        dc.density_rgba(np.ones(5))
    with pytest.raises(ValueError, match="decades"):
        dc.density_rgba(np.ones((2, 2)), decades=0)


@pytest.mark.parametrize("lat0", [60.0, -45.0, 0.0, 75.0])
def test_mercator_rows_put_a_peak_at_its_latitude(lat0):
    grid = _gaussian_grid(lat0, 30.0)
    merc = dc.to_web_mercator(grid)
    assert merc.shape == (360, 360)
    row = int(np.argmax(merc[:, 180 + 30]))  # the column of lon 30.5 holds the peak
    # Leaflet stretches the image linearly in Mercator y between +-MAX_MERCATOR_LAT:
    y_max = dc.mercator_y(dc.MAX_MERCATOR_LAT)
    y_row = y_max - (row + 0.5) * 2 * y_max / merc.shape[0]
    assert dc.mercator_lat(y_row) == pytest.approx(lat0, abs=1.0)  # within a source row
    # ... where a latitude-linear placement would have missed it by degrees at 60 north
    if lat0 == 60.0:
        naive_lat = dc.MAX_MERCATOR_LAT - (row + 0.5) * 2 * dc.MAX_MERCATOR_LAT / merc.shape[0]
        assert abs(naive_lat - lat0) > 5.0


def test_mercator_round_trip_and_edges():
    lats = np.array([-85.0, -30.0, 0.0, 45.0, 85.0])
    assert dc.mercator_lat(dc.mercator_y(lats)) == pytest.approx(lats)
    assert dc.mercator_y(dc.MAX_MERCATOR_LAT) == pytest.approx(np.pi)
    image = np.arange(180)[:, None].repeat(2, axis=1)  # the row number as the value
    merc = dc.to_web_mercator(image, height=100)
    # the first output row starts at 85.05 north (source row 4, 86..85 north is cut off) and
    # its centre is further south; the last row mirrors it
    assert merc[0, 0] in (4, 5) and merc[-1, 0] == 179 - merc[0, 0]
    assert np.all(np.diff(merc[:, 0]) >= 0)
    with pytest.raises(ValueError, match="height"):
        dc.to_web_mercator(image, height=0)


def test_png_data_url_round_trips():
    rgba = dc.density_rgba(_gaussian_grid(0.0, 0.0, 18, 36))
    url = dc.png_data_url(rgba)
    assert url.startswith("data:image/png;base64,")
    decoded = Image.open(io.BytesIO(base64.b64decode(url.split(",", 1)[1])))
    assert decoded.mode == "RGBA"
    assert np.array_equal(np.asarray(decoded), rgba)
    with pytest.raises(ValueError, match="density_rgba"):
        dc.png_data_url(np.zeros((2, 2, 3), np.uint8))


def test_a_nearly_flat_density_is_drawn_faintly():
    uniform = 1 / (4 * np.pi)
    assert dc.strength(np.full((4, 8), uniform)) == dc.FLAT_STRENGTH
    assert dc.strength(np.full((4, 8), 2 * uniform)) == dc.FLAT_STRENGTH  # log10(2)/2 < 0.25
    assert dc.strength(np.full((4, 8), 10 * uniform)) == pytest.approx(0.5)
    assert dc.strength(np.full((4, 8), 100 * uniform)) == 1.0
    assert dc.strength(np.full((4, 8), 1e6)) == 1.0
    assert dc.strength(np.zeros((4, 8))) == dc.FLAT_STRENGTH
