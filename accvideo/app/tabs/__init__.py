"""One module per tab of the app; `accvideo.app.layout.build_app` puts them together."""
