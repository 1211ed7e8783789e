"""The benchmark harness behind `callsweep bench` (and the scripts in bench/): alternating
timed rounds, the rule as generic tools run it, peak-memory probes, the parity gate, reports."""
