"""Class names of the zero-shot benchmarks, and their readable prompt forms.

The raw names are exactly the ones in the official metadata files (ESC-50's
``category`` column, UrbanSound8K's ``class`` column, TUT17's scene labels),
in the official class-index order. Prompts use :func:`readable_label`.

Example
-------
>>> len(ESC50_CLASSES), len(US8K_CLASSES), len(TUT17_CLASSES)
(50, 10, 15)
>>> readable_label("door_wood_knock"), readable_label("cafe/restaurant")
('door wood knock', 'cafe or restaurant')
"""

# one definition, in the torch-free runtime (the lowest layer), which needs it too
from tinyclap.runtime.text import readable_label  # noqa: F401  (re-exported)

ESC50_CLASSES = (
    "dog", "rooster", "pig", "cow", "frog", "cat", "hen", "insects", "sheep", "crow",
    "rain", "sea_waves", "crackling_fire", "crickets", "chirping_birds", "water_drops",
    "wind", "pouring_water", "toilet_flush", "thunderstorm", "crying_baby", "sneezing",
    "clapping", "breathing", "coughing", "footsteps", "laughing", "brushing_teeth",
    "snoring", "drinking_sipping", "door_wood_knock", "mouse_click", "keyboard_typing",
    "door_wood_creaks", "can_opening", "washing_machine", "vacuum_cleaner", "clock_alarm",
    "clock_tick", "glass_breaking", "helicopter", "chainsaw", "siren", "car_horn", "engine",
    "train", "church_bells", "airplane", "fireworks", "hand_saw",
)  # fmt: skip

US8K_CLASSES = (
    "air_conditioner", "car_horn", "children_playing", "dog_bark", "drilling",
    "engine_idling", "gun_shot", "jackhammer", "siren", "street_music",
)  # fmt: skip

TUT17_CLASSES = (
    "beach", "bus", "cafe/restaurant", "car", "city_center", "forest_path",
    "grocery_store", "home", "library", "metro_station", "office", "park",
    "residential_area", "train", "tram",
)  # fmt: skip

LABEL_SETS = {"esc50": ESC50_CLASSES, "us8k": US8K_CLASSES, "tut17": TUT17_CLASSES}

# The procedural classes of the embedded Synth dataset (:mod:`tinyclap.data.synth_sounds`).
SYNTH_CLASSES = (
    "siren",
    "rain",
    "engine idling",
    "birds chirping",
    "dog barking",
    "clock ticking",
    "church bell",
    "knocking",
    "applause",
    "wind",
    "alarm beeping",
    "plucked string",
    "footsteps",
    "water dripping",
    "crackling fire",
    "heartbeat",
    "phone ringing",
    "whistle",
    "drum roll",
    "helicopter",
    "car horn",
    "thunder",
    "bees buzzing",
    "cat meowing",
)
