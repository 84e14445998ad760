"""The graph executor lives with the tools (tools/graph_runner.py); the tests use it from there."""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "tools"))
from graph_runner import VIRTUAL, input_specs, is_widget, run_graph, ui_to_api, widget_names  # noqa: E402,F401
