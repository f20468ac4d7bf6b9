"""What a run's results mean: our scores beside the published ones, with their intervals, as tables and charts."""
