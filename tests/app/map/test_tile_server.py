import http.client
import socket
import threading
import urllib.error
import urllib.request

import pytest
from pmtiles.tile import Compression, TileType
from tile_pack_files import (
    gzipped,
    mvt_tile,
    png_tile,
    vector_metadata,
    write_mbtiles,
    write_pmtiles,
)

from app.map.tile_packs import open_pack
from app.map.tile_server import TileServer

RED, BLUE = png_tile((255, 0, 0)), png_tile((0, 0, 255))
MVT = mvt_tile("water")


@pytest.fixture
def server():
    with TileServer() as running:
        yield running


@pytest.fixture
def raster(tmp_path):
    path = write_mbtiles(
        tmp_path / "r.mbtiles", {(1, 0, 0): RED, (1, 1, 1): BLUE}, {"format": "png"}
    )
    with open_pack(path) as pack:
        yield pack


@pytest.fixture
def vector(tmp_path):
    path = write_pmtiles(
        tmp_path / "v.pmtiles",
        {(0, 0, 0): gzipped(MVT)},
        tile_type=TileType.MVT,
        compression=Compression.GZIP,
        metadata=vector_metadata(["water"]),
    )
    with open_pack(path) as pack:
        yield pack


def get(url: str) -> tuple[int, dict[str, str], bytes]:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read()


def raw_get(server: TileServer, path: str, method: str = "GET") -> http.client.HTTPResponse:
    """A request with ``path`` sent as it is (urllib would not send some of these)."""
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    connection.request(method, path)
    response = connection.getresponse()
    response.read()
    connection.close()
    return response


def tile_url(template: str, z: int, x: int, y: int) -> str:
    return template.format(z=z, x=x, y=y)


def test_raster_tiles_with_their_headers(server, raster):
    template = server.add(raster)
    assert template.startswith(f"http://127.0.0.1:{server.port}/packs/")
    assert template.endswith("/{z}/{x}/{y}.png")
    status, headers, body = get(tile_url(template, 1, 0, 0))
    assert (status, body) == (200, RED)
    assert headers["Content-Type"] == "image/png"
    assert headers["Content-Length"] == str(len(RED))
    assert headers["Access-Control-Allow-Origin"] == "*"
    assert headers["Cache-Control"] == "no-store"
    assert get(tile_url(template, 1, 1, 1))[2] == BLUE


def test_vector_tiles_are_served_gunzipped(server, vector):
    template = server.add(vector)
    assert template.endswith("/{z}/{x}/{y}.mvt")
    status, headers, body = get(tile_url(template, 0, 0, 0))
    assert (status, body) == (200, MVT)
    assert headers["Content-Type"] == "application/vnd.mapbox-vector-tile"
    assert "Content-Encoding" not in headers
    assert headers["Access-Control-Allow-Origin"] == "*"


def test_missing_tiles_are_empty_404s_with_cors(server, raster):
    template = server.add(raster)
    for z, x, y in ((1, 0, 1), (5, 3, 3), (1, 7, 0)):  # not stored, too deep, outside zoom 1
        status, headers, body = get(tile_url(template, z, x, y))
        assert (status, body) == (404, b"")
        assert headers["Access-Control-Allow-Origin"] == "*"


def test_only_registered_packs_are_served(server, raster):
    template = server.add(raster)
    other = template.replace(template.split("/")[4], "0123456789abcdef")
    assert get(tile_url(other, 1, 0, 0))[0] == 404
    server.remove(raster)
    assert get(tile_url(template, 1, 0, 0))[0] == 404
    server.remove(raster)  # twice: nothing happens


@pytest.mark.parametrize(
    "path",
    [
        "/",
        "/packs/",
        "/etc/passwd",
        "/../../etc/passwd",
        "/packs/{id}/../../../etc/passwd",
        "/packs/{id}/1/0/..%2f..%2fpasswd",
        "/packs/{id}/%2e%2e/0/0.png",
        "/packs/{id}/1/0/0.png/..",
        "/packs/{id}/1/0/0",
        "/packs/{id}/1/0/0.jpg",  # not this pack's extension
        "/packs/{id}/a/0/0.png",
        "/packs/{id}/1/-1/0.png",
        "/packs/{id}/123/0/0.png",
        "/packs/{id}/1/0/0.png\\x",
    ],
)
def test_other_paths_are_bad_requests(server, raster, path):
    pack_id = server.add(raster).split("/")[4]
    response = raw_get(server, path.replace("{id}", pack_id))
    assert response.status == 400


def test_a_query_string_is_ignored(server, raster):
    template = server.add(raster)
    assert get(tile_url(template, 1, 0, 0) + "?v=2")[2] == RED


def test_two_packs_at_once(server, raster, vector):
    raster_url, vector_url = server.add(raster), server.add(vector)
    assert raster_url != vector_url
    assert server.add(raster) == raster_url  # the same pack again: the same URL
    assert get(tile_url(raster_url, 1, 0, 0))[2] == RED
    assert get(tile_url(vector_url, 0, 0, 0))[2] == MVT
    assert get(tile_url(vector_url.replace(".mvt", ".png"), 0, 0, 0))[0] == 400


def test_concurrent_fetches(server, raster, vector):
    raster_url, vector_url = server.add(raster), server.add(vector)
    wrong = []

    def fetch() -> None:
        for _ in range(25):
            if get(tile_url(raster_url, 1, 1, 1))[2] != BLUE:
                wrong.append("raster")
            if get(tile_url(vector_url, 0, 0, 0))[2] != MVT:
                wrong.append("vector")

    threads = [threading.Thread(target=fetch) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert wrong == []


def test_kept_alive_connection_serves_many_tiles(server, raster):
    path = server.add(raster).split(str(server.port), 1)[1]
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    for _ in range(5):
        connection.request("GET", path.format(z=1, x=0, y=0))
        response = connection.getresponse()
        assert response.read() == RED
        connection.request("GET", path.format(z=1, x=0, y=1))
        response = connection.getresponse()
        assert (response.status, response.read()) == (404, b"")
    connection.close()


def test_head_and_options(server, raster):
    path = server.add(raster).split(str(server.port), 1)[1].format(z=1, x=0, y=0)
    head = raw_get(server, path, "HEAD")
    assert (head.status, head.getheader("Content-Length")) == (200, str(len(RED)))
    options = raw_get(server, path, "OPTIONS")
    assert options.status == 204
    assert options.getheader("Access-Control-Allow-Origin") == "*"
    assert options.getheader("Access-Control-Allow-Private-Network") == "true"
    assert raw_get(server, path, "POST").status == 501


def test_a_pack_closed_under_the_server_is_a_500(server, raster):
    template = server.add(raster)
    raster.close()
    assert get(tile_url(template, 1, 0, 0))[0] == 500


def test_nothing_is_written_to_stderr(server, raster, capfd):
    template = server.add(raster)
    get(tile_url(template, 1, 0, 0))
    get(tile_url(template, 9, 0, 0))
    raw_get(server, "/nope")
    with socket.create_connection(("127.0.0.1", server.port)) as sock:
        sock.sendall(b"GET /packs/")  # and hang up mid-request
    with socket.create_connection(("127.0.0.1", server.port)) as sock:
        sock.sendall(b"\x16\x03\x01 not http at all\r\n\r\n")
        sock.recv(100)
    get(tile_url(template, 1, 0, 0))  # still serving
    out, err = capfd.readouterr()
    assert (out, err) == ("", "")


def test_start_close_and_add_before_start(raster):
    server = TileServer()
    with pytest.raises(ValueError, match=r"not running: call start\(\) first"):
        server.add(raster)
    server.start()
    server.start()  # twice: the same server
    port = server.port
    template = server.add(raster)
    assert get(tile_url(template, 1, 0, 0))[0] == 200
    server.close()
    server.close()
    with pytest.raises(OSError):
        urllib.request.urlopen(tile_url(template, 1, 0, 0), timeout=2)
    with pytest.raises(ValueError, match="not running"):
        _ = server.port
    server.start()  # again, on a new port, with no packs
    assert get(tile_url(template.replace(str(port), str(server.port)), 1, 0, 0))[0] == 404
    server.close()
