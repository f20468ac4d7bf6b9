"""What medrecipe knows of the world, each fact with the evidence it was read from: the evaluation benchmarks
and how their rows read (benchmarks, benchmark_items), base models (models), the layouts of the Hub datasets
shipped recipes name (datasets), and the checks of a recipe against that knowledge (checks).
"""
