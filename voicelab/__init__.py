"""voicelab: a studio for few-shot voice cloning in the GPT-SoVITS style."""

__version__ = "0.1.0"
