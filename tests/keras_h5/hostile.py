#!/usr/bin/python3
"""hostile.py — hostile Keras .h5 files: each refused with a clear message, never a crash or a hang.

The importer reads every attribute by its HDF5 type and shape and every
JSON value by its kind (compiler/keras_h5.c). This test makes files that
break each assumption a reader could make, with h5py, from two small valid
models written here (a Sequential and a functional one, so the test needs
nothing outside the repository), and checks for each:

  - status 1 (not 0, not 2, not a signal, not a hang of more than 20 s),
    and no sanitizer report (under -DNNCC_SANITIZE a memory error exits 1),
  - the file's name and the expected words on stderr (the attribute, or the
    key path of the JSON value with what was expected and what was found).

The valid models themselves must load (status 0), so a case fails for the
reason it was made for. It also runs the audit's reproducers committed in
tests/keras_h5/hostile/ (D3 D4 D8 D9 D10 of issue 13) and a few valid
variants that must keep working: a 1-element string array attribute, a
keras_version with a line break (which must stay inside the YAML comment),
a training_config whose loss nncc does not read (left out, not an error).

Usage: hostile.py NNCC WORK_DIR
"""
import copy
import json
import os
import subprocess
import sys

import h5py
import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
LIMIT = 20  # seconds: more is a hang


def dense(name, units, **extra):
    cfg = {"name": name, "trainable": True, "dtype": "float32", "units": units, "activation": "relu",
           "use_bias": True, "kernel_initializer": {"class_name": "GlorotUniform", "config": {"seed": None}},
           "bias_initializer": {"class_name": "Zeros", "config": {}}, "kernel_regularizer": None,
           "bias_regularizer": None, "activity_regularizer": None, "kernel_constraint": None,
           "bias_constraint": None}
    cfg.update(extra)
    return {"class_name": "Dense", "config": cfg}


SEQUENTIAL = {"class_name": "Sequential", "config": {"name": "seq", "layers": [
    {"class_name": "InputLayer", "config": {"batch_input_shape": [None, 4], "dtype": "float32", "name": "x"}},
    dense("d1", 3),
    dense("d2", 2)]}}


def functional_layer(layer, sources):
    layer = copy.deepcopy(layer)
    layer["name"] = layer["config"]["name"]
    layer["inbound_nodes"] = [[[s, 0, 0, {}] for s in sources]]
    return layer


FUNCTIONAL = {"class_name": "Functional", "config": {"name": "func", "layers": [
    {"class_name": "InputLayer", "config": {"batch_input_shape": [None, 4], "dtype": "float32", "name": "x"},
     "name": "x", "inbound_nodes": []},
    functional_layer(dense("d1", 3), ["x"]),
    functional_layer(dense("d2", 2), ["d1"])],
    "input_layers": [["x", 0, 0]], "output_layers": [["d2", 0, 0]]}}

TRAINING = {"loss": "mse", "metrics": ["mae"], "optimizer_config": {"class_name": "SGD", "config": {
    "name": "SGD", "learning_rate": 0.01, "momentum": 0.0, "nesterov": False}}}


def write(path, model=SEQUENTIAL, training=TRAINING, attrs=None):
    """A model file; attrs overrides root attributes (a value, or a callable f(h5file, name))."""
    base = {"model_config": json.dumps(model) if not isinstance(model, str) else model,
            "keras_version": "2.4.0", "backend": "tensorflow"}
    if training is not None:
        base["training_config"] = json.dumps(training) if not isinstance(training, str) else training
    base.update(attrs or {})
    with h5py.File(path, "w") as f:
        for name, value in base.items():
            if value is None:
                continue
            if callable(value):
                value(f, name)
            else:
                f.attrs[name] = value
        f.create_group("model_weights")


def edited(model, edit):
    m = copy.deepcopy(model)
    edit(m)
    return m


def layers(m):
    return m["config"]["layers"]


def nested_aliases():
    """A model_config whose YAML aliases stand for 10^9 values (the audit's D10, small)."""
    parts = ["&a0 [x,x,x,x,x,x,x,x,x,x]"]
    parts += ["&a%d [%s]" % (i, ",".join(["*a%d" % (i - 1)] * 10)) for i in range(1, 9)]
    return ('{"class_name": "Sequential", "config": {"name": "s", "layers": [{"class_name": "InputLayer", '
            '"config": {"batch_input_shape": [null, 4], "name": "x"}}, {"class_name": "Dense", "config": '
            '{"name": "d", "units": 2, "kernel_initializer": {"class_name": "Constant", "config": {"value": [%s]}}}}]}}'
            % ", ".join(parts))


def wide_concat(n):
    m = copy.deepcopy(FUNCTIONAL)
    ls = layers(m)
    for i in range(n):
        ls.append(functional_layer(dense("b%d" % i, 1), ["x"]))
    ls.append({"class_name": "Concatenate", "name": "cat", "config": {"name": "cat", "axis": -1},
               "inbound_nodes": [[["b%d" % i, 0, 0, {}] for i in range(n)]]})
    m["config"]["output_layers"] = [["cat", 0, 0]]
    return m


def vlen_array(values):
    return lambda f, name: f.attrs.create(name, values, dtype=h5py.string_dtype())


def fixed_array(values):
    width = max(len(v) for v in values)
    return lambda f, name: f.attrs.create(name, np.array([v.encode() for v in values], dtype="S%d" % width))


def cases():
    s, fn = SEQUENTIAL, FUNCTIONAL
    # (file name, write arguments, expected status, [expected stderr substrings])
    yield "valid_sequential.h5", {}, 0, []
    yield "valid_functional.h5", {"model": fn}, 0, []
    yield "valid_one_element_arrays.h5", {"attrs": {"model_config": fixed_array([json.dumps(s)]),
                                                    "keras_version": vlen_array(["2.4.0"])}}, 0, []
    yield "valid_unread_loss.h5", {"training": dict(TRAINING, loss=[["mse"]])}, 0, []
    yield "valid_newline_version.h5", {"attrs": {"keras_version": "2.4.0\nname: injected"}}, 0, []

    # attributes: type and shape
    yield "attr_config_int_array.h5", {"attrs": {"model_config": np.arange(3)}}, 1, [
        "attribute 'model_config' is an array of 3 integers"]
    yield "attr_config_float.h5", {"attrs": {"model_config": np.float32(1.5)}}, 1, [
        "attribute 'model_config' is a 4-byte float; Keras writes a string"]
    yield "attr_config_fixed_array.h5", {"attrs": {"model_config": fixed_array([json.dumps(s), "x"])}}, 1, [
        "attribute 'model_config' is an array of 2 strings; Keras writes one string"]
    yield "attr_version_vlen_array.h5", {"attrs": {"keras_version": vlen_array(["2.4.0", "3.0"])}}, 1, [
        "attribute 'keras_version' is an array of 2 strings; Keras writes one string"]
    yield "attr_training_int.h5", {"attrs": {"training_config": np.int64(7)}}, 1, [
        "attribute 'training_config' is an 8-byte integer; Keras writes a string"]
    yield "attr_config_empty_array.h5", {"attrs": {"model_config": np.array([], dtype="S4")}}, 1, [
        "attribute 'model_config' is empty"]
    yield "attr_config_null_space.h5", {"attrs": {"model_config": h5py.Empty("S10")}}, 1, [
        "attribute 'model_config' is empty"]
    yield "attr_config_missing.h5", {"attrs": {"model_config": None}}, 1, ["no model_config attribute"]
    yield "attr_config_empty_string.h5", {"attrs": {"model_config": ""}}, 1, ["model_config", "empty"]

    # the JSON: every level, wrong kinds
    yield "json_not_json.h5", {"model": "{\"class_name\": "}, 1, ["model_config"]
    yield "json_top_list.h5", {"model": "[1, 2]"}, 1, ["model_config is a list, not a Keras {class_name, config}"]
    yield "json_top_null.h5", {"model": "null"}, 1, ["model_config is null"]
    yield "json_class_name_int.h5", {"model": edited(s, lambda m: m.update(class_name=5))}, 1, [
        "model_config: class_name: expected a string, got an integer"]
    yield "json_layers_object.h5", {"model": edited(s, lambda m: m["config"].update(layers={}))}, 1, [
        "model_config: config.layers: expected a list, got an object"]
    yield "json_layer_int.h5", {"model": edited(s, lambda m: layers(m).__setitem__(1, 7))}, 1, [
        "config.layers[1]: expected a layer object, got an integer"]
    yield "json_layer_config_list.h5", {"model": edited(s, lambda m: layers(m)[1].update(config=[]))}, 1, [
        "config.layers[1].config: expected an object, got a list"]
    yield "json_layer_name_list.h5", {"model": edited(s, lambda m: layers(m)[1]["config"].update(name=[1]))}, 1, [
        "config.layers[1].config.name: expected a string, got a list"]
    yield "json_layer_name_null.h5", {"model": edited(s, lambda m: layers(m)[1]["config"].update(name=None))}, 1, [
        "config.layers[1]: the layer has no name"]
    yield "json_shape_string.h5", {"model": edited(
        s, lambda m: layers(m)[0]["config"].update(batch_input_shape=[None, "4"]))}, 1, [
        "config.layers[0].config.batch_input_shape[1]: expected an integer or null, got a string"]
    yield "json_shape_int.h5", {"model": edited(s, lambda m: layers(m)[0]["config"].update(batch_input_shape=4))}, 1, [
        "config.layers[0].config.batch_input_shape: expected a list [batch, dims...], got an integer"]
    yield "json_activation_int.h5", {"model": edited(s, lambda m: layers(m)[1]["config"].update(activation=5))}, 1, [
        "config.layers[1].config.activation: expected an activation name, got an integer"]
    yield "json_use_bias_string.h5", {"model": edited(s, lambda m: layers(m)[1]["config"].update(use_bias="yes"))}, 1, [
        "config.layers[1].config.use_bias: expected true or false, got a string"]
    yield "json_trainable_list.h5", {"model": edited(s, lambda m: layers(m)[1]["config"].update(trainable=[]))}, 1, [
        "config.layers[1].config.trainable: expected true or false, got a list"]
    yield "json_initializer_class_int.h5", {"model": edited(
        s, lambda m: layers(m)[1]["config"].update(kernel_initializer={"class_name": 1, "config": {}}))}, 1, [
        "config.layers[1].config.kernel_initializer.class_name: expected a string, got an integer"]
    yield "json_regularizer_l1_string.h5", {"model": edited(
        s, lambda m: layers(m)[1]["config"].update(kernel_regularizer={"class_name": "L1L2",
                                                                       "config": {"l1": "x", "l2": 0}}))}, 1, [
        "config.layers[1].config.kernel_regularizer.config.l1: expected a number, got a string"]
    yield "json_relu_max_value_string.h5", {"model": edited(s, lambda m: layers(m).__setitem__(
        2, {"class_name": "ReLU", "config": {"name": "r", "max_value": "6"}}))}, 1, [
        "config.layers[2].config.max_value: expected a number, got a string"]
    # an initializer class that would be YAML syntax if written bare: stays one (unknown) name
    yield "json_initializer_class_yaml.h5", {"model": edited(
        s, lambda m: layers(m)[1]["config"].update(kernel_initializer={
            "class_name": "Zeros: {}}, units: 99, x: {", "config": {}}))}, 1, ["unknown initializer"]
    yield "json_inbound_index_null.h5", {"model": edited(
        fn, lambda m: layers(m)[2]["inbound_nodes"][0][0].__setitem__(1, None))}, 1, [
        "model_config: config.layers[2].inbound_nodes[0][0][1]: expected an integer, got null"]
    yield "json_inbound_tensor_float.h5", {"model": edited(
        fn, lambda m: layers(m)[2]["inbound_nodes"][0][0].__setitem__(2, 0.5))}, 1, [
        "config.layers[2].inbound_nodes[0][0][2]: expected an integer, got a number"]
    yield "json_inbound_name_int.h5", {"model": edited(
        fn, lambda m: layers(m)[2]["inbound_nodes"][0][0].__setitem__(0, 3))}, 1, [
        "config.layers[2].inbound_nodes[0][0][0]: expected a layer name, got an integer"]
    yield "json_inbound_entry_string.h5", {"model": edited(
        fn, lambda m: layers(m)[2]["inbound_nodes"][0].__setitem__(0, "d1"))}, 1, [
        "config.layers[2].inbound_nodes[0][0]: expected a list [layer, node_index, tensor_index], got a string"]
    yield "json_inbound_short.h5", {"model": edited(
        fn, lambda m: layers(m)[2]["inbound_nodes"][0].__setitem__(0, ["d1"]))}, 1, [
        "config.layers[2].inbound_nodes[0][0]: expected a list [layer, node_index, tensor_index], got 1 item"]
    yield "json_inbound_object.h5", {"model": edited(fn, lambda m: layers(m)[2].update(inbound_nodes={}))}, 1, [
        "config.layers[2].inbound_nodes: expected a list of inbound nodes, got an object"]
    yield "json_inbound_node_int.h5", {"model": edited(fn, lambda m: layers(m)[2].update(inbound_nodes=[5]))}, 1, [
        "config.layers[2].inbound_nodes[0]: expected an inbound node"]
    yield "json_output_index_string.h5", {"model": edited(
        fn, lambda m: m["config"]["output_layers"][0].__setitem__(2, "0"))}, 1, [
        "config.output_layers[0][2]: expected an integer, got a string"]
    yield "json_input_entry_empty.h5", {"model": edited(fn, lambda m: m["config"].update(input_layers=[[]]))}, 1, [
        "config.input_layers[0]: expected a list [layer, node_index, tensor_index], got 0 items"]
    yield "json_output_layers_null.h5", {"model": edited(fn, lambda m: m["config"].update(output_layers=None))}, 1, [
        "config.output_layers: expected a list, got null"]
    yield "json_17_inputs.h5", {"model": wide_concat(17)}, 1, ["layer 'cat' has more than 16 inputs"]
    yield "json_billion_laughs.h5", {"model": nested_aliases()}, 1, [
        "model_config:1:", "stand for more than 1000000 values"]
    yield "json_alias_cycle.h5", {"model": '{"class_name": "Sequential", "config": &a {"layers": [*a]}}'}, 1, [
        "is inside the collection its anchor names"]
    yield "json_training_not_json.h5", {"training": "{\"loss\": "}, 1, ["training_config"]


def run(cmd):
    try:
        p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=LIMIT)
    except subprocess.TimeoutExpired:
        return None, "", ""
    return p.returncode, p.stdout.decode(errors="replace"), p.stderr.decode(errors="replace")


def check(nncc, path, status, words, problems):
    rc, out, err = run([nncc, "summary", path])
    name = os.path.basename(path)
    if rc is None:
        problems.append("%s: hangs (no answer in %d s)" % (name, LIMIT))
    elif "Sanitizer" in err or "runtime error:" in err:  # a sanitized build: memory errors exit 1 too
        problems.append("%s: %s" % (name, err.strip()[:600]))
    elif rc != status:
        problems.append("%s: exit %s, want %d: %s" % (name, rc, status, err.strip()[:300]))
    elif status == 1 and path not in err:
        problems.append("%s: the message does not name the file: %s" % (name, err.strip()[:300]))
    else:
        for w in words:
            if w not in err:
                problems.append("%s: no '%s' in: %s" % (name, w, err.strip()[:400]))
    return out


def main():
    nncc, work = sys.argv[1:3]
    os.makedirs(work, exist_ok=True)
    problems = []
    n = 0
    for name, kwargs, status, words in cases():
        path = os.path.join(work, name)
        write(path, **kwargs)
        check(nncc, path, status, words, problems)
        n += 1
    # the valid variants say what they should in the YAML they compile as
    _, yaml, _ = run([nncc, "--emit-yaml", os.path.join(work, "valid_newline_version.h5")])
    if any(line.startswith("name: injected") for line in yaml.splitlines()):
        problems.append("valid_newline_version.h5: keras_version's line break ended the YAML comment")
    _, yaml, _ = run([nncc, "--emit-yaml", os.path.join(work, "valid_unread_loss.h5")])
    if "training_config is left out" not in yaml:
        problems.append("valid_unread_loss.h5: no 'training_config is left out' in --emit-yaml")
    # the audit's reproducers
    repro = {
        "stack_overflow_vlen_string_array_keras_version.h5": "attribute 'keras_version' is an array of 1000 strings",
        "heap_overflow_fixed_string_array_model_config.h5": "attribute 'model_config' is an array of 4 strings",
        "null_inbound_node_index.h5": "config.layers[1].inbound_nodes[0][0][1]: expected an integer",
        "null_scalar_in_batch_shape.h5": "config.layers[0].config.batch_input_shape[1]: expected an integer or null",
        "hang_billion_laughs_model_config.h5": "stand for more than 1000000 values",
    }
    for name, words in repro.items():
        check(nncc, os.path.join(HERE, "hostile", name), 1, [words], problems)
        n += 1
    for p in problems:
        print("FAIL", p)
    print("%d cases, %d problems" % (n, len(problems)))
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
