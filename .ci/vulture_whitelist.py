"""Names that look unused to vulture but are used from outside the project's code.

Read by vulture only (`.ci/run`), never imported. Each line names what uses the name; a name
listed here counts as used everywhere, so keep the list to names that another program reads.
"""
# ruff: noqa
# fmt: off
_ = None

# Blender reads these from the classes the add-on registers (operators, panels, preferences).
_.bl_idname; _.bl_label; _.bl_description; _.bl_options; _.bl_category; _.bl_order
_.bl_parent_id; _.bl_region_type; _.bl_space_type; bl_info
_.execute; _.poll; _.draw
# Blender settings the add-on writes (Blender reads them).
_.use_property_split; _.use_property_decorate; _.scale_y; _.alpha_mode
_.frame_offset_start; _.frame_offset_end; _.file_format; _.codec; _.audio_codec; _.use_sequencer

# Python calls a module's __getattr__ for a name it lacks (the lazy exports of backend.models).
__getattr__

# Settings read by the libraries they are written to: PyTorch, ONNX Runtime, ONNX, PyAV.
_.benchmark
_.ENABLE_RAY_CLUSTER  # Ray's single-machine (loopback) switch, read by Ray when its cluster starts
_.graph_optimization_level; _.execution_mode; _.inter_op_num_threads; _.log_severity_level
_.doc_string
_.compress_type; _.external_attr  # zipfile.ZipInfo (build.py)
_.bit_rate; _.sample_rate; _.pix_fmt; _.color_primaries; _.color_trc; _.colorspace
_.color_range; _.thread_type; _.thread_count

# Fields of saved records, written to JSON with dataclasses.asdict and read back by name.
_.n_detected; _.n_usable; _.median_y; _.tallest_height; _.close_height_reset  # stats.json
_.epochs_local  # the training options' schedule (read by stage name)
_.offset_x; _.offset_y  # Adjustments: written and read by name (asdict, adjust.json)
_.feat  # LossWeights: the feature-matching weight (read by loss name)
_.onnx_files  # CpuNetworks: which ONNX files were loaded, for the reader (and tests) to check
