"""Run the nst-video CLI from a checkout without installing: `python nst_video_main.py ...`."""
from nst_video.cli import main

if __name__ == "__main__":
    main()
