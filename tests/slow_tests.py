"""Tests that take seconds each, marked ``slow`` by tests/conftest.py so ``-m "not slow"`` leaves them out.

Measured with ``python3 -m pytest --durations=0`` on the shared 2-core VM (2026-12-01, other work
running: figures are a few times what a quiet machine takes): trainings, whole `fer-edge run`
processes, broker outages and kills, installs, fuzzing, browsers. Tests may also carry
``@pytest.mark.slow`` themselves (many do); this list holds the ones measured slow that did not.
Keys are ``file name::test name`` (with the parameter id where there is one).
"""
from __future__ import annotations

SLOW_TESTS = frozenset({
    "test_config_fuzz.py::test_arbitrary_text",   # 15 s
    "test_config_fuzz.py::test_default_config_with_one_leaf_replaced",   # 4 s
    "test_config_fuzz.py::test_mutations_of_the_shipped_config",   # 8 s
    "test_config_fuzz.py::test_structured_documents",   # 10 s
    "test_dashboard_browser.py::test_devices_come_and_go_and_the_page_survives_a_broker_restart",   # 4 s
    "test_dashboard_browser.py::test_the_page_shows_what_a_real_service_publishes_then_stopped_then_offline",   # 62 s
    "test_dashboard_server.py::test_stream_sends_a_snapshot_then_each_change_once",   # 3 s
    "test_dashboard_server.py::test_survives_a_broker_restart_and_says_so_meanwhile",   # 3 s
    "test_deploy.py::test_reinstall_keeps_an_edited_config",   # 6 s
    "test_deploy.py::test_tree_is_complete",   # 8 s
    "test_distill.py::test_teacher_without_a_class_does_not_push_it_down",   # 4 s
    "test_distill.py::test_tiny_distillation_run_gives_loadable_int8_model",   # 56 s
    "test_model.py::test_accuracy_on_fixed_test_slice_matches_card",   # 4 s
    "test_model.py::test_eval_command_prints_accuracy_and_writes_png",   # 4 s
    "test_model.py::test_fine_tune_options_keep_one_calibrated_output",   # 73 s
    "test_model.py::test_tiny_training_run_exports_loadable_int8_model",   # 327 s
    "test_mqtt.py::test_last_will_offline_on_sigkill_and_stopped_on_sigterm",   # 5 s
    "test_mqtt.py::test_unreachable_broker_at_startup_queues_and_reports_once_per_interval",   # 4 s
    "test_mqtt_kill.py::test_sigkill_mid_run_then_restart_delivers_everything",   # 14 s
    "test_mqtt_outage.py::test_broker_outage_of_ten_seconds_loses_nothing",   # 17 s
    "test_preview.py::test_recognize_command_prints_events_and_explains_a_missing_display",   # 8 s
    "test_queue.py::test_commits_survive_sigkill",   # 2 s
    "test_queue.py::test_one_process_per_queue_file",   # 3 s
    "test_queue_store_failure.py::test_queue_holds_counts_and_stores_again_under_a_real_file_size_limit",   # 4 s
    "test_remote_config.py::test_startup_publishes_the_running_version",   # 4 s
    "test_remote_config.py::test_topic_change_moves_the_device_live",   # 15 s
    "test_remote_hardening.py::test_a_message_for_another_device_or_without_serial_is_rejected",   # 3 s
    "test_remote_hardening.py::test_a_remote_camera_id_with_wildcards_is_rejected_without_a_traceback",   # 3 s
    "test_remote_hardening.py::test_an_older_or_reused_serial_is_a_replay",   # 2 s
    "test_remote_hardening.py::test_an_unsigned_message_cannot_send_images_off_the_device",   # 4 s
    "test_remote_hardening.py::test_config_sign_prints_a_replay_safe_message",   # 5 s
    "test_remote_hardening.py::test_start_up_warns_about_anonymous_access_and_unsigned_remote_config",   # 2 s
    "test_remote_hardening.py::test_the_same_signed_message_sent_twice_is_applied_once",   # 2 s
    "test_schedule.py::test_classification_rate_and_detection_interval_follow_the_schedule[haar]",   # 11 s
    "test_schedule.py::test_live_reconfigure_keeps_the_faces_in_view[haar]",   # 4 s
    "test_schedule.py::test_single_face_clip_gives_one_track_and_few_emotion_changes[haar]",   # 8 s
    "test_service.py::test_an_invalid_config_at_start_falls_back_to_the_previous_one",   # 2 s
    "test_service.py::test_mjpeg_preview_serves_annotated_frames",   # 3 s
    "test_service.py::test_sigterm_stops_capture_flushes_the_queue_and_exits_quickly",   # 6 s
    "test_streams.py::test_mjpeg_camera_cut_and_restore",   # 36 s
    "test_streams.py::test_rtsp_camera_cut_and_restore",   # 6 s
    "test_watchdog.py::test_watchdog_pings_while_healthy_and_stop_when_the_pipeline_hangs",   # 15 s
    # second measurement (fast tier run, 2026-12-01 11:13, load 24-120): tests added since
    "test_align.py::test_aligned_photos_are_framed_like_ferplus",   # 4 s
    "test_cli_detect.py::test_corrupt_detector_model",   # 4 s
    "test_cli_detect.py::test_detect_prints_one_json_line_per_face_and_annotates",   # 3 s
    "test_cli_detect.py::test_missing_emotion_model_and_bad_config",   # 3 s
    "test_dashboard_browser.py::test_the_page_keeps_its_memory_bounded_under_a_flood",   # 12 s
    "test_dashboard_server.py::test_credentials_and_tls_as_a_device_uses_them",   # 3 s
    "test_demo.py::test_demo_events_with_the_default_config",   # 8 s
    "test_demo.py::test_demo_source_plays_the_clip_once_in_media_time",   # 4 s
    "test_demo.py::test_recognize_with_source_demo_prints_the_events",   # 13 s
    "test_demo.py::test_run_with_source_demo_prints_the_events_and_exits_0_at_the_end",   # 11 s
    "test_demo.py::test_run_with_source_demo_publishes_over_mqtt",   # 12 s
    "test_deploy.py::test_installed_fer_edge_validates_the_installed_config",   # 21 s (the install fixture)
    "test_deploy.py::test_installed_package_is_the_venv_copy",   # shares that fixture
    "test_deploy.py::test_installed_unit_verifies",   # shares that fixture
    "test_remote_config.py::test_source_change_restarts_the_pipeline",   # 5 s
})
