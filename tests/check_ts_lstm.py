"""The LSTM forecaster learns: after 2 epochs on a small series set its
validation MSE is below the linear baseline's after its first epoch; and
the notes' last_time_step_mse as a custom expression equals the built-in.
Usage: check_ts_lstm.py LSTM_HISTORY_CSV LINEAR_HISTORY_CSV"""
import csv
import sys

lstm = list(csv.DictReader(open(sys.argv[1])))
linear = list(csv.DictReader(open(sys.argv[2])))
a, b = float(lstm[-1]["val_loss"]), float(linear[0]["val_loss"])
# the notes' last_time_step_mse written as a custom metric equals the built-in one
same = all(abs(float(r["val_last_time_step_mse"]) - float(r["val_my_last_time_step_mse"])) < 1e-6 for r in lstm)
print(f"custom metric mean(square(y_true[:, -1] - y_pred[:, -1])) equals the built-in last_time_step_mse: "
      f"{'ok' if same else 'FAILED'}")
ok = len(lstm) == 2 and a < b and same
print(f"ts_lstm validation MSE after {len(lstm)} epochs: {a:.5f}; linear baseline after 1 epoch: {b:.5f}: "
      f"{'ok' if ok else 'FAILED'}")
print(f"{int(ok)} passed, {int(not ok)} failed")
sys.exit(0 if ok else 1)
