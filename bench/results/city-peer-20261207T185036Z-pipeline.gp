set terminal pngcairo size 960,540 noenhanced
set output '/tmp/bcity/city-peer-20261207T185036Z-pipeline.png'
set grid
set key top right
set title 'chargeflow pipeline, city preset, 824319 events (median run)'
set xlabel 'seconds since the first stats line'
set ylabel 'events/s processed'
set y2label 'lag: input records not yet processed'
set ytics nomirror
set y2tics
plot '/tmp/bcity/city-peer-20261207T185036Z-pipeline.dat' using 1:2 with lines lw 2 title 'events/s' axes x1y1, '/tmp/bcity/city-peer-20261207T185036Z-pipeline.dat' using 1:3 with lines lw 2 title 'lag' axes x1y2

