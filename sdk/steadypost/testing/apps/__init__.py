"""The simulated platforms (each an app behind the simulator's router): tus, the post API,
TikTok, Vimeo, YouTube, Instagram and X."""
