"""Request rates out of Prometheus exposition text, whatever the chunks it arrives in."""

from __future__ import annotations

import pytest

from bot.adapters.fireworks import request_rates_in

TEXT = b"""# HELP other_before something
other_before{deployment_id="a"} 9
# TYPE request_counter_total:sum_by_deployment gauge
request_counter_total:sum_by_deployment{deployment_id="a",region="x"} 0.5
request_counter_total:sum_by_deployment{deployment="accounts/demo/deployments/b"} 2

request_counter_total:sum_by_deployment{deployment_id="a"} 1
request_counter_total:sum_by_deployment_other{deployment_id="c"} 4
# TYPE latency gauge
request_counter_total:sum_by_deployment{deployment_id="late"} 7
latency{deployment_id="a"} 3
"""


@pytest.mark.parametrize("size", [1, 2, 7, 64, 1000, len(TEXT)])
def test_the_same_rates_whatever_the_chunk_size(size):
    chunks = [TEXT[i:i + size] for i in range(0, len(TEXT), size)]
    # Samples of one deployment add up; another metric's lines (before, inside as a longer
    # name, or after the group has ended) are not request rates.
    assert request_rates_in(chunks) == {"a": 1.5, "b": 2.0}


def test_reading_stops_once_the_group_has_ended():
    read = []

    def chunks():
        for line in TEXT.splitlines(keepends=True):
            read.append(line)
            yield line

    assert request_rates_in(chunks()) == {"a": 1.5, "b": 2.0}
    # The first line of another metric (here one whose name only starts the same) ends the group.
    assert read[-1].startswith(b"request_counter_total:sum_by_deployment_other")


def test_crlf_lines_and_a_last_line_without_newline():
    text = (b'request_counter_total:sum_by_deployment{deployment_id="q"} 3\r\n'
            b'request_counter_total:sum_by_deployment{deployment_id="r",note="a \\"b\\""} 0.25')
    assert request_rates_in([text]) == {"q": 3.0, "r": 0.25}


def test_no_samples_is_no_rates():
    assert request_rates_in([b"# nothing here\n", b""]) == {}


def test_the_deployment_label_is_found_by_name_not_by_suffix():
    text = (b'request_counter_total:sum_by_deployment{base_deployment_id="z", deployment_id="a"} 1\n'
            b'request_counter_total:sum_by_deployment{ deployment_id = "b" ,x="y"} 2\n'
            b'request_counter_total:sum_by_deployment{base_deployment_id="z"} 4\n'
            b'request_counter_total:sum_by_deployment{deployment="accounts/demo/deployments/c",a="\\\\"} 8\n')
    assert request_rates_in([text]) == {"a": 1.0, "b": 2.0, "c": 8.0}
