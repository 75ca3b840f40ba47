"""The wide & deep model trains: after `nncc train models/wide_deep.yaml`,
both of its losses (main_output_loss, aux_output_loss) and their validation
forms fall from the first epoch to the last in history.csv.
Usage: check_wide_deep.py HISTORY_CSV"""
import csv
import sys

rows = list(csv.DictReader(open(sys.argv[1])))
failed = 0
for col in ["loss", "main_output_loss", "aux_output_loss", "val_main_output_loss", "val_aux_output_loss"]:
    first, last = float(rows[0][col]), float(rows[-1][col])
    ok = last < 0.5 * first
    failed += not ok
    print(f"{col:24} epoch 0 {first:10.4f}  epoch {len(rows) - 1} {last:10.4f}  {'ok' if ok else 'FAILED (should halve)'}")
print(f"{5 - failed} passed, {failed} failed")
sys.exit(1 if failed else 0)
