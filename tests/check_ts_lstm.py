"""The LSTM forecaster learns: after 2 epochs on a small series set its
validation MSE is below the linear baseline's after its first epoch.
Usage: check_ts_lstm.py LSTM_HISTORY_CSV LINEAR_HISTORY_CSV"""
import csv
import sys

lstm = list(csv.DictReader(open(sys.argv[1])))
linear = list(csv.DictReader(open(sys.argv[2])))
a, b = float(lstm[-1]["val_loss"]), float(linear[0]["val_loss"])
ok = len(lstm) == 2 and a < b
print(f"ts_lstm validation MSE after {len(lstm)} epochs: {a:.5f}; linear baseline after 1 epoch: {b:.5f}: "
      f"{'ok' if ok else 'FAILED'}")
print(f"{int(ok)} passed, {int(not ok)} failed")
sys.exit(0 if ok else 1)
