"""Every user-facing parameter of every command, each defined once (see ``contract.params``).

Parameters that several commands share (device, seed, batch size, extent, mask, the
validation fraction) are defined once here and reused; a command may change only how it
labels, explains or exposes one (:meth:`Param.but`), never its default or range, so the
same name means the same thing everywhere.

Order matters: it is the order of the QGIS dialog, ``--help`` and the README tables.
Standard library only: the QGIS side imports this.
"""

from __future__ import annotations

from typing import Any

from .params import Command, Kind, Param

# ---------------------------------------------------------------- shared by several commands

SEED = Param("SEED", "seed", Kind.INT, "Random seed",
             "Seed of everything random in the run: the same seed repeats a run.",
             default=0, minimum=0, qgis=True, advanced=True)
DEVICE = Param("DEVICE", "device", Kind.DEVICE, "Device",
               "auto uses the first CUDA GPU when PyTorch sees one, else the CPU; cpu and cuda force one. The "
               "command line also takes cuda:N, the N-th GPU.",
               default="auto", choices=("auto", "cpu", "cuda"), qgis=True)
BATCH_SIZE = Param("BATCH_SIZE", "batch_size", Kind.INT, "Batch size", "Items per step.",
                   default=4, minimum=1, qgis=True)
EXTENT = Param("EXTENT", "extent", Kind.EXTENT, "Extent", "Work only inside this rectangle.",
               qgis=True, metavar="XMIN YMIN XMAX YMAX")
EXTENT_CRS = Param("EXTENT_CRS", "extent_crs", Kind.TEXT, "CRS of the extent", "CRS of EXTENT, e.g. EPSG:4326.",
                   typical="EPSG:4326")
MASK = Param("MASK", "mask", Kind.PATH, "Mask polygons",
             "Polygons (a GeoJSON file on the command line) that limit the work.", qgis=True, metavar="GEOJSON")
VALIDATION = Param("VALIDATION", "validation", Kind.FLOAT, "Validation fraction (spatial blocks)",
                   "Share of chips held out for validation.", default=0.1, minimum=0.0, maximum=0.9)
RESOLUTION = Param("RESOLUTION", "resolution", Kind.FLOAT, "Resolution of web/database layers (default: native)",
                   "Cell size for layers that are not local files.", minimum=0.0, cli=False, qgis=True)
# The reduced precisions training and translation share (model.device.autocast_dtype checks them).
PRECISIONS = ("float32", "bfloat16", "float16")
MODEL_TILE_SIZE = Param("TILE_SIZE", "tile_size", Kind.INT, "Tile size (pixels; default: the model's)",
                        "Tile side in pixels; default: the model's chip size. It must be a multiple of 2^depth of "
                        "the model (the error names it).", minimum=8, typical=256)


# ---------------------------------------------------------------- shared by the exports and the evaluations

BANDS_A = Param("BANDS", "bands_a", Kind.BANDS, "Bands of A (default: all)",
                "Bands of A to export, in this order. Empty: all bands.", qgis=True, parent="INPUT")
BANDS_B = Param("BANDS2", "bands_b", Kind.BANDS, "Bands of B (default: all)",
                "Bands of B to export, in this order. Empty: all bands.", qgis=True, parent="INPUT2")
CHIP_TILE_SIZE = Param(
    "TILE_SIZE", "tile_size", Kind.INT, "Tile size (pixels)",
    "Chip width and height in pixels; 128 trains faster on a CPU. Training picks the deepest U-Net (up to the "
    "reference's 8 levels) whose 2^depth divides it: any size of at least 32 px divisible by 4 trains.",
    default=256, minimum=8, qgis=True)
STRIDE = Param("STRIDE", "stride", Kind.INT, "Stride (pixels)",
               "Step between chip origins. Equal to the tile size: no overlap; half: 50 % overlap and four times "
               "more chips from the same area.", default=128, minimum=1, qgis=True)
MAX_NODATA = Param("MAX_NODATA", "max_nodata", Kind.FLOAT, "Largest nodata fraction per chip",
                   "Chips with a larger share of invalid pixels (nodata, masks, alpha, NaN in A or B) are skipped. "
                   "0: none allowed.", default=0.0, minimum=0.0, maximum=1.0, qgis=True)
DATA_RANGE = Param("DATA_RANGE", "data_range", Kind.NUMBERS, "Data range",
                   "PSNR/SSIM data range: one value, or one per band. Default: 255 for 8-bit references, else the "
                   "reference's valid max − min.", minimum=0.0, above=True, typical=(255.0,))
RESAMPLING = Param("RESAMPLING", "resampling", Kind.CHOICE, "Resampling of B onto A's grid",
                   "bilinear or cubic for continuous values (imagery, heights); nearest for classes.",
                   default="bilinear", choices=("bilinear", "nearest", "cubic"), qgis=True)

DIRECTION = Param("DIRECTION", "direction", Kind.CHOICE, "Direction",
                  "a2b: the model's input domain A to its target B (a Pix2Pix model's only direction); b2a: B to A, "
                  "for CycleGAN models, which hold both generators.",
                  default="a2b", choices=("a2b", "b2a"), qgis=True)


def _positional(name: str, label: str, help: str, **more: Any) -> Param:
    """A file or folder given as a command-line argument (a layer, file or destination in QGIS)."""
    return Param(name, name.lower(), Kind.PATH, label, help, positional=True, **more)


# ---------------------------------------------------------------- export

EXPORT = Command("export", (
    _positional("INPUT", "Input raster (A, model input)",
                "Raster A: what the model sees (e.g. a DSM, SAR, an old scan). Its grid defines the chips: every "
                "chip is a pixel-exact window of A.", qgis=True),
    _positional("INPUT2", "Additional input raster (B, target)",
                "Raster B: what the model should produce (e.g. an orthophoto). When its CRS, cell size or alignment "
                "differ from A's it is resampled onto A's grid (RESAMPLING), and the log says so.", qgis=True),
    BANDS_A,
    BANDS_B,
    CHIP_TILE_SIZE,
    STRIDE,
    EXTENT.but(label="Extent (default: the overlap of A and B)", help="Export only this area (reprojected to A's "
               "CRS)."),
    EXTENT_CRS.but(help="CRS of EXTENT, e.g. EPSG:4326 (default: A's CRS)."),
    MASK.but(label="Mask polygons (only chips fully inside)",
             help="Polygons: only chips that lie completely inside a polygon are exported (a GeoJSON file on the "
                  "command line)."),
    MAX_NODATA,
    VALIDATION.but(qgis=True, help="Share of chips held out for validation, as whole spatial blocks; training chips "
                                   "that overlap them are dropped, so nothing leaks. 0: no validation."),
    RESAMPLING,
    RESOLUTION.but(label="Resolution of A when a web/database layer (default: native)",
                   help="When A is not a local file (WMS, XYZ, GeoPackage, PostGIS raster) it is read into a "
                        "temporary GeoTIFF over EXTENT at this cell size, in A's CRS units (default: A's native one). "
                        "A B that is not a local file is read directly onto A's grid. Local files are read as they "
                        "are."),
    SEED.but(label="Random seed of the split",
             help="Seed of the random choice of validation blocks; the same seed gives the same split."),
    Param("ESRI_COMPATIBLE", "esri_compatible", Kind.BOOL, "Refuse what arcgis.learn would train differently",
          "The folder is also an arcgis.learn Pix2Pix training folder. arcgis.learn's Pix2Pix needs tiles of a "
          "multiple of 256 px and copies bands to make A and B equal in number; without this option such an "
          "export only warns, with it the export stops before writing anything.",
          default=False, qgis=True, advanced=True),
    _positional("OUTPUT", "Output folder",
                "A new or empty folder. A previous export there is replaced only when this one succeeds, and only "
                "the export's own files; what arcgis.learn saved there (models/, esri_normalization_stats*.json) "
                "is kept. A previous export folder that holds anything else (your files), or any other non-empty "
                "folder, is refused, naming what is there.", qgis=True),
))

# ---------------------------------------------------------------- export-unpaired

EXPORT_UNPAIRED = Command("export-unpaired", (
    _positional("INPUT", "Raster of domain A",
                "Raster A, one domain (e.g. SAR, a historic scan). Its chips are pixel-exact windows of its own grid.",
                qgis=True),
    _positional("INPUT2", "Raster of domain B",
                "Raster B, the other domain (e.g. an orthophoto). It need not overlap A nor share its CRS: it is "
                "resampled, in its own CRS, to A's cell size on the ground (or CELL_SIZE2), and the log says so.",
                qgis=True),
    BANDS_A,
    BANDS_B,
    CHIP_TILE_SIZE.but(help="Chip width and height in pixels, the same in both domains; 128 trains faster on a CPU."),
    STRIDE,
    Param("CELL_SIZE2", "cell_size_b", Kind.FLOAT, "Cell size of B (B's CRS units; default: A's on the ground)",
          "Cell size B is resampled to, in B's CRS units. Default: A's cell size measured on the ground (metres at "
          "A's centre) in B's units, or B's own cell size where it is within 1 % of that. A chip then covers the "
          "same ground in both domains. 0 is the default too.", minimum=0.0, typical=10.0, qgis=True),
    MASK.but(label="Mask polygons of A (only chips fully inside)",
             help="Polygons: only chips of A that lie completely inside a polygon are exported (a GeoJSON file on "
                  "the command line)."),
    Param("MASK2", "mask_b", Kind.PATH, "Mask polygons of B (only chips fully inside)",
          "Polygons: only chips of B that lie completely inside a polygon are exported (a GeoJSON file on the "
          "command line).", qgis=True, metavar="GEOJSON"),
    MAX_NODATA.but(help="Chips with a larger share of invalid pixels (nodata, masks, alpha, NaN) in their own "
                        "raster are skipped, in each domain. 0: none allowed."),
    VALIDATION.but(qgis=True, help="Share of each domain's chips held out for validation, as whole spatial blocks "
                                   "of that domain; training chips that overlap them are dropped. 0: no validation."),
    RESAMPLING.but(label="Resampling of B to its cell size"),
    SEED.but(label="Random seed of the split",
             help="Seed of the random choice of validation blocks; the same seed gives the same split."),
    _positional("OUTPUT", "Output folder",
                "A new or empty folder; it gets A/images and B/images (Esri's CycleGAN layout, with Esri's files "
                "in A/ and B/) and chips.json. A previous unpaired export there is replaced only when this one "
                "succeeds, keeping what arcgis.learn saved (models/, A/models/, esri_normalization_stats_a.json, "
                "esri_normalization_stats_b.json); any other entry is refused, naming it.", qgis=True),
))

# ---------------------------------------------------------------- train

TRAIN = Command("train", (
    _positional("CHIPS", "Chips folder (from Export paired chips)",
                "The OUTPUT folder of Export paired chips (with chips.json), or a folder with images/ and images2/ "
                "exported by ArcGIS Pro; for CycleGAN the OUTPUT folder of Export unpaired chips (A/images and "
                "B/images).", qgis=True),
    Param("MODEL_TYPE", "model_type", Kind.CHOICE, "Model type",
          "pix2pix: paired chips, one generator A→B. cyclegan: unpaired chips (two rasters that need not overlap), "
          "two generators A→B and B→A and two discriminators trained with cycle consistency (Zhu et al. 2017); the "
          "one .p2p translates both ways (Translate raster's DIRECTION).",
          default="pix2pix", choices=("pix2pix", "cyclegan"), flag="--model"),
    Param("EPOCHS", "epochs", Kind.INT, "Epochs",
          "Passes over the training chips (50–200 is typical). The learning rate is constant, then decays linearly "
          "to zero over the last EPOCHS_DECAY of them.", default=50, minimum=1, qgis=True),
    Param("EPOCHS_DECAY", "epochs_decay", Kind.INT, "Decay epochs",
          "The last epochs, over which the learning rate decays linearly to 0 (at most EPOCHS). Default: half of "
          "EPOCHS, as the reference's 100 + 100.", minimum=0, typical=25),
    BATCH_SIZE.but(help="Chips per optimisation step; larger needs more memory (1–16 is usual). Under torchrun, per "
                        "process."),
    DEVICE,
    Param("RESUME", "resume", Kind.BOOL, "Resume from the checkpoint",
          "Continue the training saved in OUTPUT_MODEL.ckpt (after a cancel, or to add epochs).",
          default=False, qgis=True),
    Param("LR", "lr", Kind.FLOAT, "Learning rate", "Adam learning rate, 0.0002 in the pix2pix paper.",
          default=2e-4, minimum=1e-12, maximum=0.1, qgis=True, advanced=True),
    Param("BETA1", "beta1", Kind.FLOAT, "Adam β1", "Adam's β1 (momentum of the gradient average), 0.5 in the paper.",
          default=0.5, minimum=0.0, maximum=0.999),
    Param("LAMBDA_L1", "lambda_l1", Kind.FLOAT, "λ L1 (weight of the L1 loss)",
          "Weight of the L1 term against the adversarial term (100 in the paper): lower values let the GAN add "
          "texture. Pix2Pix only (CycleGAN has no pairs).", default=100.0, minimum=0.0, qgis=True, advanced=True),
    Param("GAN_MODE", "gan_mode", Kind.CHOICE, "GAN loss",
          "Adversarial loss: vanilla (binary cross-entropy, the pix2pix reference), lsgan (least squares, the "
          "CycleGAN reference and pix2pixHD) or hinge (usually with SPECTRAL_NORM). Default: vanilla for pix2pix, "
          "lsgan for CycleGAN, as their references.",
          choices=("vanilla", "lsgan", "hinge"), none_choice="as the model's reference (pix2pix: vanilla; "
          "CycleGAN: lsgan)", typical="lsgan", qgis=True, advanced=True),
    Param("LAMBDA_FEAT", "lambda_feat", Kind.FLOAT, "λ feature matching",
          "Weight of pix2pixHD's feature-matching loss (L1 between the discriminators' activations on the fake and "
          "the real pair); 0 turns it off, pix2pixHD uses 10. Pix2Pix only.", default=0.0, minimum=0.0, qgis=True,
          advanced=True),
    Param("LAMBDA_CYCLE", "lambda_cycle", Kind.FLOAT, "λ cycle consistency",
          "CycleGAN: weight of the cycle-consistency losses (L1 of A→B→A against A and of B→A→B against B), 10 in "
          "the CycleGAN paper.", default=10.0, minimum=0.0, qgis=True, advanced=True),
    Param("LAMBDA_IDENTITY", "lambda_identity", Kind.FLOAT, "λ identity (× λ cycle)",
          "CycleGAN: weight of the identity losses (G_A(B) should be B, G_B(A) should be A) as a fraction of "
          "LAMBDA_CYCLE, 0.5 in the reference; it keeps colours and needs A and B to have the same band count "
          "(0 otherwise).", default=0.5, minimum=0.0, qgis=True, advanced=True),
    Param("POOL_SIZE", "pool_size", Kind.INT, "Image pool size",
          "CycleGAN: the discriminators see a mix of current and up to this many earlier generated chips "
          "(Shrivastava et al. 2017), 50 in the reference; 0: current chips only.",
          default=50, minimum=0, maximum=10000),
    Param("GENERATOR", "generator", Kind.CHOICE, "Generator",
          "unet (pix2pix's U-Net, skip connections) or resnet (the CycleGAN reference's ResNet: two downsamplings, "
          "RESNET_BLOCKS residual blocks, reflection padding; chips a multiple of 4 px). Default: unet for pix2pix, "
          "resnet for CycleGAN, as their references.",
          choices=("unet", "resnet"), none_choice="as the model's reference (pix2pix: U-Net; CycleGAN: ResNet)",
          typical="resnet", qgis=True, advanced=True),
    Param("RESNET_BLOCKS", "resnet_blocks", Kind.INT, "ResNet blocks",
          "Residual blocks of a ResNet generator: 9 is the reference's resnet_9blocks (for 256 px chips), 6 its "
          "resnet_6blocks (128 px).", default=9, minimum=1, maximum=64, qgis=True, advanced=True),
    Param("UPSAMPLE", "upsample", Kind.CHOICE, "Upsampling",
          "Generator upsampling: resize (bilinear ×2 + 3×3 convolution: no checkerboard, ~1.5× the training time; "
          "the default, chosen by the held-out ablation in BENCHMARKS.md) or transpose (the reference's transposed "
          "convolutions, which paint a 2-pixel checkerboard; models imported from the reference use them).",
          default="resize", choices=("transpose", "resize"), qgis=True, advanced=True),
    Param("D_SCALES", "d_scales", Kind.INT, "Discriminator scales",
          "PatchGAN discriminators at full, half and quarter resolution (pix2pixHD uses 2–3; 1 is the reference). "
          "Chips must be at least 32 px at the coarsest scale (64 px for 2, 128 px for 3).",
          default=1, minimum=1, maximum=3, qgis=True, advanced=True),
    Param("SPECTRAL_NORM", "spectral_norm", Kind.BOOL, "Spectral normalisation in the discriminator",
          "Bounds each discriminator layer (Miyato et al. 2018), which steadies GAN training.",
          default=False, qgis=True, advanced=True),
    Param("NGF", "ngf", Kind.INT, "NGF (generator filters)",
          "Filters in the generator's first layer (64 in the reference); cost grows with its square, so 16–32 "
          "train about 4–16× faster on a CPU.", default=64, minimum=1, qgis=True, advanced=True),
    Param("NDF", "ndf", Kind.INT, "NDF (discriminator filters)",
          "Filters in the discriminator's first layer (64 in the reference).", default=64, minimum=1),
    Param("DEPTH", "depth", Kind.INT, "U-Net depth",
          "U-Net levels; chip sides must be multiples of 2^depth. Default: the deepest up to 8 (the reference's) "
          "that the chip size allows.", minimum=2, maximum=10, typical=8),
    Param("NORM", "norm", Kind.CHOICE, "Normalisation",
          "Normalisation layers: batch or instance. Default: batch for pix2pix, instance for CycleGAN, as their "
          "references.", choices=("batch", "instance"), typical="instance"),
    Param("DROPOUT", "dropout", Kind.BOOL, "Dropout",
          "Dropout in the U-Net's inner layers, as the pix2pix reference; --no-dropout trains without it. CycleGAN "
          "generators have none, as the CycleGAN reference.",
          default=True, negated=True, flag="--no-dropout"),
    Param("AUGMENT", "augment", Kind.BOOL, "Augmentation",
          "Random flips and 90° rotations of each chip pair; --no-augment turns them off for imagery whose "
          "orientation matters (e.g. SAR look direction, labelled maps).",
          default=True, negated=True, flag="--no-augment"),
    Param("BEST_METRIC", "best_metric", Kind.CHOICE, "Best metric",
          "Validation metric that picks the epoch kept in the model. CycleGAN keeps the last epoch, as its "
          "reference: without pairs no validation metric says which epoch translates best.",
          default="l1", choices=("l1", "mae", "rmse", "psnr", "ssim")),
    Param("PATIENCE", "patience", Kind.INT, "Patience (epochs)",
          "Stop when the best metric has not improved for this many epochs. Default: never stop early.",
          minimum=1, typical=10),
    VALIDATION.but(help="Held-out fraction for an Esri folder without chips.json (exports of this plugin carry their "
                        "own spatial split)."),
    Param("WORKERS", "num_workers", Kind.INT, "Chip readers",
          "Processes reading chips. Default: none on the CPU (they would compete with the compute threads), up to 4 "
          "with CUDA.", minimum=0, typical=4),
    SEED.but(help="Seed of initialisation, chip order and augmentation: the same seed repeats a CPU run."),
    Param("AMP", "amp", Kind.BOOL, "Mixed precision",
          "With PRECISION left at auto: on CUDA, train in mixed precision (bfloat16 autocast where the GPU has it, "
          "else float16 with loss scaling); --no-amp trains in float32. The CPU trains in float32 either way. Kept "
          "for earlier scripts: PRECISION says the same and more.",
          default=True, negated=True, flag="--no-amp"),
    Param("PRECISION", "precision", Kind.CHOICE, "Precision",
          "What the networks compute in while training (weights and optimizer stay float32). Default (auto): mixed "
          "precision on CUDA, float32 on the CPU, as AMP. float32: full precision everywhere. bfloat16: autocast on "
          "CPUs with AVX512-BF16 or AMX and GPUs of compute capability 8.0+; refused elsewhere (PyTorch would "
          "emulate it, 12× slower than float32 on an AVX2 CPU). float16: CUDA only, with loss scaling. With "
          "--no-amp only float32 is accepted. On the real-data benchmark one epoch of bfloat16 gave held-out metrics "
          "within 0.02 dB PSNR of float32's; longer runs part ways as any two GAN runs do (BENCHMARKS.md, "
          "\"Training in bfloat16\").",
          choices=PRECISIONS, none_choice="auto (mixed on CUDA; float32 on the CPU)", typical="float32", qgis=True,
          advanced=True),
    Param("CHECKPOINT_MINUTES", "checkpoint_minutes", Kind.FLOAT, "Checkpoint interval (minutes)",
          "Save the checkpoint at the first epoch end after this many minutes (0: every epoch); it is also saved "
          "at the end and when the run is cancelled.", default=2.0, minimum=0.0),
    _positional("OUTPUT_MODEL", "Model file", "The .p2p model file to write, which Translate raster uses.", qgis=True),
    Param("OUTPUT_HTML", "report", Kind.PATH, "Training report",
          "An HTML report with the metrics per epoch, loss curves and validation previews.",
          flag="--report", qgis=True, metavar="HTML"),
))

# ---------------------------------------------------------------- translate

TRANSLATE = Command("translate", (
    _positional("INPUT", "Input raster", "A raster like the training input A (same kind of data and bands).",
                qgis=True),
    _positional("MODEL", "Model (.p2p)", "The .p2p file written by Train Pix2Pix.", qgis=True),
    DIRECTION.but(help="a2b (default): translate a raster like the training input A into B; b2a: a raster like B "
                       "into A, with a CycleGAN model's second generator (a Pix2Pix model refuses it)."),
    Param("BANDS", "bands", Kind.BANDS, "Input bands (default: as in training)",
          "Bands to feed the model, in order; default: the bands used in training.", qgis=True, parent="INPUT"),
    MODEL_TILE_SIZE.but(label="Tile size (pixels; default: a multiple of the model's chip)",
                        qgis=True, help="Tile side in pixels; default: the multiple of the model's chip size, from "
                                        "two chips to 1024 px, that covers the raster with the least compute, tiles "
                                        "starting on multiples of 2^(depth-1) px (at most 64) so they share the "
                                        "network's stride lattice (the chip size for instance-norm models, whose "
                                        "output depends on the tile's statistics). It must be a multiple of 2^depth "
                                        "of the model (the error names it); larger tiles give the network more "
                                        "context and make the overlap cheaper. A given size spreads tiles evenly."),
    Param("OVERLAP", "overlap", Kind.INT, "Overlap (pixels; default: half a chip)",
          "Pixels shared by neighbouring tiles: a margin is discarded, the rest is cross-faded. More overlap costs "
          "more compute (the log shows the factor). Default: half the model's chip size, at most 64 px (a quarter "
          "chip with a given tile size).",
          minimum=0, typical=64, qgis=True),
    Param("MARGIN", "margin", Kind.INT, "Margin (pixels)",
          "Pixels discarded at each tile's inner edge in overlaps (edge effects of zero padding). Default: a "
          "quarter of the overlap.", minimum=0, typical=16),
    BATCH_SIZE.but(help="Tiles per forward pass on a GPU. The CPU runs one fixed batch shape per tile size (the "
                        "fastest exact kernels), so its output is identical bit for bit whatever this value."),
    DEVICE,
    EXTENT.but(label="Extent (default: the whole raster)",
               help="Translate only this area; the output covers exactly its pixels."),
    EXTENT_CRS.but(help="CRS of EXTENT, e.g. EPSG:4326 (default: the raster's CRS)."),
    RESOLUTION.but(help="For an input that is not a local file (WMS, XYZ, GeoPackage, PostGIS raster): the cell size, "
                        "in the layer's CRS units, of the temporary GeoTIFF it is read into over EXTENT. Default: the "
                        "layer's native one (a tiled service's finest zoom). Use the resolution the model was trained "
                        "at. Local files are read as they are."),
    Param("BLEND", "blend", Kind.CHOICE, "Blending of overlaps",
          "hann: cross-fade overlaps (no seams); crop: hard cut in the middle of each overlap.",
          default="hann", choices=("hann", "crop"), qgis=True, advanced=True),
    Param("TTA", "tta", Kind.BOOL, "Test-time augmentation (8 views)",
          "Average the predictions of the 8 flips and rotations of each tile (8× slower, smoother).",
          default=False, qgis=True, advanced=True),
    Param("OUTPUT_DTYPE", "dtype", Kind.CHOICE, "Output data type",
          "Data type of the output; default: the training target's. Values are rounded and clipped to the type's "
          "range.", choices=("uint8", "uint16", "int16", "uint32", "int32", "float32", "float64"),
          flag="--dtype", none_choice="same as the training target", qgis=True, advanced=True),
    Param("COG", "cog", Kind.BOOL, "Cloud Optimized GeoTIFF",
          "Write a Cloud Optimized GeoTIFF (internal tiling and overviews).", default=False, qgis=True, advanced=True),
    Param("BACKEND", "backend", Kind.CHOICE, "Backend (inference engine)",
          "torch (default) or onnxruntime, when the optional packages are installed in the engine's Python (pip "
          "install onnx onnxscript onnxruntime); CPU only. Against torch's oneDNN kernels onnxruntime measured "
          "1.2× faster per tile but only 1.05× end to end on a 2048² raster (BENCHMARKS.md): a model's first use "
          "exports it (~10-15 s) and each run loads the cached graph (~1-2 s). Outputs differ from torch's in a "
          "few pixels (0.02 % of values, a few levels).",
          default="torch", choices=("torch", "onnxruntime"), qgis=True, advanced=True),
    Param("PRECISION", "precision", Kind.CHOICE, "Precision",
          "float32 (default): exact, the same output bit for bit run after run. bfloat16 (CPUs with AVX512-BF16 or "
          "AMX, GPUs of compute capability 8.0+) or float16 (CUDA only): faster, with outputs that differ from "
          "float32 by a fraction of an output level on average and a few levels at most (bfloat16 on the demo "
          "model: mean 0.13-0.29, 99.9th percentile 1, max 2-4 levels of 255; BENCHMARKS.md, \"Reduced "
          "precision\"). Refused where the device cannot run it (a CPU without bfloat16 instructions would only "
          "emulate it, ~10x slower than float32).",
          default="float32", choices=PRECISIONS, qgis=True, advanced=True),
    Param("CREATION_OPTIONS", "creation_options", Kind.OPTIONS, "GDAL creation options (KEY=VALUE;…)",
          "Extra GDAL GeoTIFF options, e.g. COMPRESS=ZSTD;PREDICTOR=2 (on the command line: --co COMPRESS=ZSTD --co "
          "PREDICTOR=2).", flag="--co", qgis=True, advanced=True, metavar="KEY=VALUE"),
    Param("PART", "part", Kind.PART, "Part",
          "Translate only part I of N (I from 0) into the folder OUTPUT, for a job array or a cluster; 'assemble' "
          "joins the parts. Under torchrun the rank and world size are used.", metavar="I/N"),
    _positional("OUTPUT", "Translated raster",
                "GeoTIFF, written under a temporary name and renamed when complete (with PART: a folder of parts).",
                qgis=True),
))

# ---------------------------------------------------------------- evaluate

EVALUATE = Command("evaluate", (
    _positional("PREDICTION", "Translated raster",
                "The output of Translate raster (or any raster on the reference's grid).", qgis=True),
    _positional("REFERENCE", "Reference raster",
                "The real target raster over the same area, on the same grid. A layer that is not a local file (WMS, "
                "XYZ, GeoPackage) is read onto the prediction's grid first.", qgis=True),
    MASK.but(label="Only inside these polygons",
             help="Count only pixels inside these polygons (e.g. held-out areas; a GeoJSON file on the command line)."),
    EXTENT.but(help="Count only pixels inside this rectangle."),
    EXTENT_CRS.but(help="CRS of EXTENT, e.g. EPSG:4326 (default: the reference's CRS)."),
    DATA_RANGE,
    Param("OUTPUT_REPORT", "report", Kind.PATH, "Metrics report (JSON)",
          "Metrics per band and overall as JSON, for scripts and comparisons between models.",
          flag="--report", qgis=True, metavar="JSON"),
    Param("OUTPUT_HTML", "html", Kind.PATH, "Metrics report (HTML)",
          "The same metrics as an HTML page that opens in the Results Viewer.", flag="--html", qgis=True,
          metavar="HTML"),
    Param("ERROR_RASTER", "error_raster", Kind.PATH, "Absolute error raster",
          "|prediction − reference| per band as a float32 GeoTIFF, to see where the model is wrong.",
          qgis=True, metavar="TIF"),
))

# ---------------------------------------------------------------- evaluate-unpaired

EVALUATE_UNPAIRED = Command("evaluate-unpaired", (
    _positional("PREDICTION", "Translated raster",
                "The output of Translate raster, in the target domain's units.", qgis=True),
    _positional("CHIPS", "Unpaired chips folder",
                "The OUTPUT folder of Export unpaired chips (or an ArcGIS Pro CycleGAN export): the target domain's "
                "chips are what the prediction's pixels should look like.", qgis=True),
    Param("DOMAIN", "domain", Kind.CHOICE, "Target domain",
          "The domain the prediction was translated into: B for A→B (default), A for B→A.",
          default="B", choices=("B", "A"), qgis=True),
    Param("SPLIT", "split", Kind.CHOICE, "Target chips",
          "Which of the target domain's chips to compare with: validation (held out from training, default), "
          "train, or all.", default="validation", choices=("validation", "train", "all"), qgis=True,
          advanced=True),
    Param("SAMPLE_PIXELS", "sample_pixels", Kind.INT, "Pixels sampled per band",
          "At most this many valid pixels per band are drawn (seeded) from the prediction and from the chips; the "
          "distances are exact for fewer. At most 100 million (8 bytes each per band and side in memory).",
          default=1_000_000, minimum=100, maximum=100_000_000, qgis=True, advanced=True),
    Param("REFERENCE", "reference", Kind.PATH, "Reference raster (optional)",
          "Where an aligned reference of the target exists (same grid as the prediction), the usual metrics (MAE, "
          "RMSE, bias, PSNR, SSIM, R²) against it too.", qgis=True, metavar="TIF"),
    Param("ORIGINAL", "original", Kind.PATH, "Original raster (for the cycle error)",
          "The raster that was translated (domain A for A→B). With RECONSTRUCTION: the cycle-reconstruction error.",
          qgis=True, metavar="TIF"),
    Param("RECONSTRUCTION", "reconstruction", Kind.PATH, "Reconstructed raster (for the cycle error)",
          "The prediction translated back (A→B→A), on ORIGINAL's grid: its MAE, RMSE, PSNR and SSIM against "
          "ORIGINAL are the cycle-reconstruction error.", qgis=True, metavar="TIF"),
    DATA_RANGE.but(help="PSNR/SSIM data range of the reference and cycle metrics: one value, or one per band. "
                        "Default: 255 for 8-bit rasters, else the valid max − min."),
    SEED.but(help="Seed of the pixel sample."),
    Param("OUTPUT_REPORT", "report", Kind.PATH, "Metrics report (JSON)",
          "Every measure per band as JSON, for scripts and comparisons between models.",
          flag="--report", qgis=True, metavar="JSON"),
    Param("OUTPUT_HTML", "html", Kind.PATH, "Metrics report (HTML)",
          "The same measures as an HTML page that opens in the Results Viewer.", flag="--html", qgis=True,
          metavar="HTML"),
))

# ---------------------------------------------------------------- command line only

ASSEMBLE = Command("assemble", (
    Param("PARTS", "parts", Kind.PATHS, "Parts",
          "Folder(s) of parts, or part .tif/.json files, written by translate … --part I/N.", positional=True),
    _positional("OUTPUT", "Virtual raster", "The VRT to write (.vrt; paths relative to it)."),
    Param("OUTPUT_COG", "cog", Kind.PATH, "Cloud Optimized GeoTIFF",
          "Also write the whole raster as one Cloud Optimized GeoTIFF.", flag="--cog", metavar="TIF"),
))

IMPORT_REFERENCE = Command("import-reference", (
    _positional("CHECKPOINT", "Reference checkpoint",
                "The reference's <epoch>_net_G.pth (e.g. latest_net_G.pth of a unet_256 model), or a CycleGAN's "
                "<epoch>_net_G_A.pth (A→B)."),
    Param("CHECKPOINT_B", "checkpoint_b", Kind.PATH, "Reference checkpoint B→A",
          "A CycleGAN's <epoch>_net_G_B.pth (B→A): with it the package holds both generators and translates both "
          "ways.", flag="--checkpoint-b", metavar="PTH"),
    _positional("OUTPUT", "Model file", "The model package (.p2p) to write."),
    Param("CHIP_SIZE", "chip_size", Kind.INT, "Chip size (pixels)",
          "Tile size the model was trained on. Default: 2^depth (256 for unet_256, 128 for unet_128).",
          minimum=8, typical=256),
    Param("NORM_STATS", "norm_stats", Kind.CHOICE, "BatchNorm statistics",
          "BatchNorm at test time: running = the reference with --eval; per-image = the reference's default test "
          "mode (each tile's own statistics), without dropout noise.",
          default="running", choices=("running", "per-image")),
))

EXPORT_ONNX = Command("export-onnx", (
    _positional("MODEL", "Model (.p2p)", "The model package (.p2p) to export."),
    DIRECTION.but(help="The generator to export: a2b (default) or, for a CycleGAN model, b2a.", qgis=False),
    _positional("OUTPUT", "ONNX file", "The ONNX file to write (replaced only on success)."),
    MODEL_TILE_SIZE.but(help="Tile size of the exported graph; default: the model's chip size."),
    Param("CHECK", "check", Kind.BOOL, "Check with ONNX Runtime",
          "Compare ONNX Runtime's output with PyTorch's after writing; --no-check skips it.",
          default=True, negated=True, flag="--no-check"),
    Param("DEEPNESS", "deepness", Kind.CHOICE, "Graph for the Deepness QGIS plugin",
          "A graph for the Deepness QGIS plugin: its input convention in (x/255, then mean/std), target units "
          "(rounded, 0..255) out. regressor: one output per band, runs in Deepness' dock; superresolution: one "
          "output, needs scale factor 1 (Deepness' Python API only). Default: the plain graph, normalised in and out.",
          choices=("regressor", "superresolution")),
))

COMMANDS = (EXPORT, EXPORT_UNPAIRED, TRAIN, TRANSLATE, EVALUATE, EVALUATE_UNPAIRED, ASSEMBLE, IMPORT_REFERENCE,
            EXPORT_ONNX)
