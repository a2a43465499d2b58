"""Write the raw data of the example (plain Python; not part of the CMF port)."""

import os
import random

rnd = random.Random(1001)
os.makedirs("artifacts/raw", exist_ok=True)
with open("artifacts/raw/wine.csv", "w") as f, open("artifacts/labels.csv", "w") as labels:
    f.write("alcohol,acidity,quality\n")
    labels.write("row,label\n")
    for i in range(40):
        alcohol = round(rnd.uniform(8, 14), 2)
        acidity = round(rnd.uniform(0.1, 1.0), 3)
        quality = round(0.5 * alcohol - 2.0 * acidity + rnd.gauss(0, 0.3), 3)
        f.write(f"{alcohol},{acidity},{quality}\n")
        labels.write(f"{i},{'good' if quality > 3.5 else 'bad'}\n")
