"""Due process: objections (异议), restoration (恢复信誉), credit repair (信用修复), reports (举报)."""
