"""Train, evaluate and export a convolutional autoencoder.

    python recipes/ae.py                       # built-in mnist5k
    python recipes/ae.py --anomaly-class 7     # train without 7s, then detect them
"""

from zoo import recipe
from zoo.models.autoencoder import Autoencoder

MODEL = Autoencoder

if __name__ == "__main__":
    recipe.main(MODEL)
