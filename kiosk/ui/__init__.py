"""The Qt application: main window, admin dialogs, registration, attendance mode.

Only this package imports Qt (PySide6). It adapts the headless core's callbacks
(called on the camera, recognition, sync and telemetry threads) to Qt signals, so
every widget is touched on the GUI thread only.
"""
