set terminal pngcairo size 960,540 noenhanced
set output 'small-peer-20261205T140000Z-pipeline.png'
set grid
set key top right
set title 'chargeflow pipeline, small preset, 23555477 events (median run)'
set xlabel 'seconds since the first stats line'
set ylabel 'events/s processed'
set y2label 'lag: input records not yet processed'
set ytics nomirror
set y2tics
plot 'small-peer-20261205T140000Z-pipeline.dat' using 1:2 with lines lw 2 title 'events/s' axes x1y1, 'small-peer-20261205T140000Z-pipeline.dat' using 1:3 with lines lw 2 title 'lag' axes x1y2

