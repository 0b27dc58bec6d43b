"""What users read: Pareto fronts, hypervolume, paper tables and plots (written to reports/)."""
